//! The expression language's unit tests.
use super::*;
use crate::value::item_from_json;
use serde_json::json;

fn subs(names: Value, values: Value) -> Substitutions {
    Substitutions::from_request(&json!({
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }))
    .unwrap()
}

fn movie() -> Item {
    item_from_json(&json!({
        "year": {"N": "2013"}, "title": {"S": "Rush"},
        "info": {"M": {
            "rating": {"N": "8.3"}, "genres": {"SS": ["Action", "Drama"]},
            "actors": {"L": [{"S": "Daniel Bruhl"}, {"S": "Chris Hemsworth"}]},
        }},
    }))
    .unwrap()
}

fn holds(text: &str, values: Value) -> bool {
    let s = subs(json!({"#yr": "year", "#i": "info"}), values);
    parse_condition(text, &s, "ConditionExpression")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .holds(&movie())
}

#[test]
fn conditions_evaluate_like_dynamodb() {
    let v = json!({
        ":y": {"N": "2013"}, ":lo": {"N": "2000"}, ":hi": {"N": "2020.5"},
        ":t": {"S": "Ru"}, ":r": {"N": "8"}, ":g": {"S": "Drama"}, ":a": {"S": "Daniel Bruhl"},
        ":ty": {"S": "SS"}, ":two": {"N": "2"}, ":s": {"S": "2013"},
    });
    for (text, want) in [
        ("#yr = :y", true),
        ("#yr = :s", false),
        ("#yr <> :s", true),
        ("#yr BETWEEN :lo AND :hi", true),
        ("begins_with(title, :t)", true),
        ("#i.rating > :r AND contains(#i.genres, :g)", true),
        ("contains(#i.actors, :a) AND #i.actors[1] <> :a", true),
        ("attribute_type(#i.genres, :ty)", true),
        ("size(#i.actors) = :two", true),
        (
            "attribute_exists(#i.rating) AND attribute_not_exists(#i.plot)",
            true,
        ),
        ("NOT #yr IN (:lo, :hi)", true),
        ("#yr IN (:lo, :y)", true),
        ("#yr < :s", false),
        (
            "(#yr = :lo OR #yr = :y) AND NOT attribute_exists(nothing)",
            true,
        ),
        ("#yr = :lo OR #yr = :hi AND #yr = :y", false),
        ("nothing <> :y", true),
        ("nothing = :y", false),
        ("nothing < :y OR nothing >= :y", false),
    ] {
        assert_eq!(holds(text, v.clone()), want, "{text}");
    }
}

#[test]
fn malformed_expressions_and_substitutions_are_validation_errors() {
    let s = subs(json!({"#yr": "year"}), json!({":y": {"N": "1"}}));
    for bad in [
        "#yr =",
        "#yr = :y AND",
        "#nope = :y",
        "#yr = :missing",
        "year == :y",
        "begins_with(#yr)",
        "frobnicate(#yr)",
        "#yr = :y)",
        "",
        "#yr @ :y",
    ] {
        let e = parse_condition(bad, &s, "ConditionExpression").unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Validation, "{bad}");
    }
    let s = subs(json!({"#yr": "year", "#x": "x"}), json!({":y": {"N": "1"}}));
    parse_condition("#yr = :y", &s, "ConditionExpression").unwrap();
    let unused = s.check_all_used().unwrap_err();
    assert!(unused.message.contains("#x"), "{unused}");
}

#[test]
fn conditions_follow_dynamodbs_static_rules() {
    let s = subs(
        json!({}),
        json!({":n": {"N": "1"}, ":five": {"N": "5"}, ":s": {"S": "x"}}),
    );
    let parse = |text: &str| parse_condition(text, &s, "FilterExpression");
    for good in [
        "(a = :n)",
        "(a) = :n",
        "a = (:n)",
        "((a = :n) OR b = :n)",
        "(a = :n) AND (b = :n)",
        "NOT (a = :n)",
        "size(a) = size(a)",
        "a BETWEEN :n AND :five",
        "a BETWEEN :n AND :n",
        "begins_with(a, :s)",
    ] {
        assert!(parse(good).is_ok(), "{good}: {:?}", parse(good).err());
    }
    for (bad, why) in [
        ("((a = :n))", "redundant parentheses"),
        ("NOT ((a = :n))", "redundant parentheses"),
        ("a = a", "distinct"),
        ("begins_with(a, a)", "distinct"),
        ("a.b[1] <> a.b[1]", "first operand: [a, b, [1]]"),
        ("begins_with(a, :n)", "operand type: N"),
        ("a BETWEEN :five AND :n", "upper bound"),
        ("a BETWEEN :n AND :s", "same data type"),
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.message.contains(why), "{bad}: {}", e.message);
    }
}

#[test]
fn expressions_too_long_or_too_deep_are_refused_without_exhausting_the_stack() {
    let s = subs(json!({}), json!({":n": {"N": "1"}}));
    let long = format!("a = :n{}", " OR a = :n".repeat(500));
    let e = parse_condition(&long, &s, "FilterExpression").unwrap_err();
    assert!(e.message.contains("maximum allowed size"), "{}", e.message);
    for deep in [
        format!("{}a = :n{}", "(".repeat(2000), ")".repeat(2000)),
        format!("{}a = :n", "NOT ".repeat(1000)),
        format!("{}a{} = :n", "(".repeat(2000), ")".repeat(2000)),
    ] {
        let e = parse_condition(&deep, &s, "FilterExpression").unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Validation);
    }
    let fine = format!("{}a = :n", "NOT ".repeat(60));
    assert!(parse_condition(&fine, &s, "FilterExpression").is_ok());
}

#[test]
fn update_expressions_parse_into_actions_and_refuse_overlaps() {
    let s = subs(
        json!({"#i": "info"}),
        json!({":r": {"N": "5.5"}, ":p": {"S": "x"}, ":one": {"N": "1"}, ":l": {"L": []}, ":g": {"SS": ["a"]}}),
    );
    let actions = parse_update(
        "SET #i.rating = :r, #i.plot = :p, n = if_not_exists(n, :one) + :one, l = list_append(l, :l) REMOVE #i.actors[0] ADD c :one DELETE #i.genres :g",
        &s,
    )
    .unwrap();
    assert_eq!(actions.len(), 7);
    assert!(matches!(&actions[2], Action::Set(_, Term::Plus(_, _))));
    assert!(parse_update("SET a = :one, a.b = :one", &s).is_err());
    assert!(parse_update("SET a = :one SET b = :one", &s).is_err());
    assert!(parse_update("PUT a = :one", &s).is_err());
}

fn updated(text: &str, values: Value) -> Result<Value, DynamoError> {
    let s = subs(json!({"#i": "info"}), values);
    let actions = parse_update(text, &s)?;
    let keys = ["year", "title"];
    refuse_key_updates(&actions, &keys)?;
    apply(&movie(), &actions).map(|i| crate::value::item_to_json(&i))
}

#[test]
fn updates_apply_like_the_getting_started_guide() {
    let got = updated(
        "SET #i.rating = #i.rating + :val, #i.plot = :p REMOVE #i.actors[0]",
        json!({":val": {"N": "1.2"}, ":p": {"S": "Everything happens all at once."}}),
    )
    .unwrap();
    assert_eq!(got["info"]["M"]["rating"], json!({"N": "9.5"}));
    assert_eq!(
        got["info"]["M"]["plot"],
        json!({"S": "Everything happens all at once."})
    );
    assert_eq!(
        got["info"]["M"]["actors"],
        json!({"L": [{"S": "Chris Hemsworth"}]})
    );
    let counted = updated(
        "SET n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD #i.genres :g, c :one DELETE #i.genres :drop",
        json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":l": {"L": [{"S": "x"}]},
               ":g": {"SS": ["Sport"]}, ":drop": {"SS": ["Action"]}}),
    );
    // ADD and DELETE of one set in one expression overlap: refused, as DynamoDB does.
    assert!(counted.is_err());
    let counted = updated(
        "SET n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD c :one, #i.genres :g",
        json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":l": {"L": [{"S": "x"}]},
               ":g": {"SS": ["Sport"]}}),
    )
    .unwrap();
    assert_eq!(counted["n"], json!({"N": "1"}));
    assert_eq!(counted["c"], json!({"N": "1"}));
    assert_eq!(counted["l"], json!({"L": [{"S": "x"}]}));
    assert_eq!(
        counted["info"]["M"]["genres"],
        json!({"SS": ["Action", "Drama", "Sport"]})
    );
    let emptied = updated(
        "DELETE #i.genres :g",
        json!({":g": {"SS": ["Action", "Drama"]}}),
    )
    .unwrap();
    assert!(emptied["info"]["M"].get("genres").is_none());
}

#[test]
fn updates_that_dynamodb_refuses_are_refused() {
    for (text, values) in [
        ("SET #i.rating = #i.rating + :s", json!({":s": {"S": "x"}})),
        ("SET a = nothing", json!({})),
        ("SET missing.deep = :s", json!({":s": {"S": "x"}})),
        ("SET year = :s", json!({":s": {"S": "x"}})),
        ("ADD title :s", json!({":s": {"S": "x"}})),
        ("ADD #i.rating :s", json!({":s": {"S": "x"}})),
    ] {
        let e = updated(text, values).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Validation, "{text}: {e}");
    }
}

#[test]
fn projections_refuse_overlapping_and_conflicting_paths() {
    let s = subs(json!({"#a": "a", "#b": "a"}), json!({}));
    for bad in [
        "a, a",
        "#a[2], #b[2]",
        "a.b, a",
        "a.b, a[0]",
        "a[0].x, a[0][1]",
    ] {
        let err = parse_projection(bad, &s).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Validation, "{bad}");
    }
    for good in ["a.b, a.c", "a[0], a[1]", "a, b"] {
        assert!(parse_projection(good, &s).is_ok(), "{good}");
    }
}

#[test]
fn projections_keep_only_the_named_paths() {
    let s = subs(json!({"#i": "info"}), json!({}));
    let paths = parse_projection("title, #i.rating, #i.actors[1]", &s).unwrap();
    let got = crate::value::item_to_json(&project(&movie(), &paths));
    assert_eq!(
        got,
        json!({"title": {"S": "Rush"}, "info": {"M": {"rating": {"N": "8.3"}, "actors": {"L": [{"S": "Chris Hemsworth"}]}}}})
    );
}
