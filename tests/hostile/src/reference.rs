//! A deliberately simple second evaluator of DynamoDB conditions, for the differential
//! target: conditions are generated from the fuzzer's bytes as a tree, rendered as
//! expression text, parsed by the real parser and evaluated by it, and evaluated here
//! straight from the tree. The two must agree on every item.
//!
//! The tree covers what this evaluator is sure of: comparisons, `BETWEEN`, `IN` and
//! `begins_with` of a number attribute with numbers and a string attribute with strings,
//! `attribute_exists`/`attribute_not_exists` of present and missing attributes, and
//! `AND`, `OR`, `NOT` nested a few levels. Comparisons across types and with missing
//! attributes are left to the `expression` target, which checks only that nothing panics.

use dynamodb::expr::{self, Substitutions};
use serde_json::{json, Map, Value};

const STRINGS: [&str; 5] = ["a", "ab", "b", "ba", "z"];

/// The fuzzer's bytes, read one at a time; zeros once they run out.
struct Draw<'a>(&'a [u8]);

impl Draw<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn number(&mut self) -> i64 {
        i64::from(self.byte() % 13) - 3
    }

    fn string(&mut self) -> &'static str {
        STRINGS[usize::from(self.byte()) % STRINGS.len()]
    }
}

#[derive(Debug, Clone, Copy)]
enum Lit {
    N(i64),
    S(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
enum Name {
    /// `n`, a number every item has.
    N,
    /// `s`, a string every item has.
    S,
    /// `m`, which no item has.
    Missing,
}

#[derive(Debug)]
enum Tree {
    Cmp(Lit, Op),
    Between(Lit, Lit),
    In(Vec<Lit>),
    BeginsWith(&'static str),
    Exists(Name, bool),
    Not(Box<Tree>),
    And(Box<Tree>, Box<Tree>),
    Or(Box<Tree>, Box<Tree>),
}

fn lit(draw: &mut Draw<'_>, number: bool) -> Lit {
    if number {
        Lit::N(draw.number())
    } else {
        Lit::S(draw.string())
    }
}

fn generate(draw: &mut Draw<'_>, depth: u32) -> Tree {
    let choices = if depth >= 4 { 5 } else { 8 };
    let number = draw.byte().is_multiple_of(2);
    match draw.byte() % choices {
        0 => {
            let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
            let op = ops[usize::from(draw.byte()) % ops.len()];
            Tree::Cmp(lit(draw, number), op)
        }
        1 => {
            let (a, b) = (lit(draw, number), lit(draw, number));
            // DynamoDB refuses literal bounds out of order.
            match (a, b) {
                (Lit::N(x), Lit::N(y)) if x > y => Tree::Between(b, a),
                (Lit::S(x), Lit::S(y)) if x > y => Tree::Between(b, a),
                _ => Tree::Between(a, b),
            }
        }
        2 => {
            let count = 1 + usize::from(draw.byte() % 4);
            Tree::In((0..count).map(|_| lit(draw, number)).collect())
        }
        3 => Tree::BeginsWith(draw.string()),
        4 => {
            let names = [Name::N, Name::S, Name::Missing];
            let name = names[usize::from(draw.byte()) % names.len()];
            Tree::Exists(name, draw.byte().is_multiple_of(2))
        }
        5 => Tree::Not(Box::new(generate(draw, depth + 1))),
        6 => Tree::And(
            Box::new(generate(draw, depth + 1)),
            Box::new(generate(draw, depth + 1)),
        ),
        _ => Tree::Or(
            Box::new(generate(draw, depth + 1)),
            Box::new(generate(draw, depth + 1)),
        ),
    }
}

/// One item: `n` and `s` drawn, `m` absent.
struct Item {
    n: i64,
    s: &'static str,
}

fn evaluate(tree: &Tree, item: &Item) -> bool {
    use std::cmp::Ordering;
    let order = |l: &Lit| match l {
        Lit::N(x) => item.n.cmp(x),
        Lit::S(x) => item.s.cmp(x),
    };
    match tree {
        Tree::Cmp(l, op) => {
            let o = order(l);
            match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
            }
        }
        Tree::Between(lo, hi) => order(lo) != Ordering::Less && order(hi) != Ordering::Greater,
        Tree::In(list) => list.iter().any(|l| order(l) == Ordering::Equal),
        Tree::BeginsWith(prefix) => item.s.starts_with(prefix),
        Tree::Exists(name, exists) => matches!(name, Name::N | Name::S) == *exists,
        Tree::Not(t) => !evaluate(t, item),
        Tree::And(a, b) => evaluate(a, item) && evaluate(b, item),
        Tree::Or(a, b) => evaluate(a, item) || evaluate(b, item),
    }
}

/// Renders `tree` as expression text, collecting the names and values it uses (each
/// value under a placeholder of its own, so every one is used exactly once).
struct Render {
    names: Map<String, Value>,
    values: Map<String, Value>,
}

impl Render {
    fn name(&mut self, name: Name) -> &'static str {
        let (placeholder, attribute) = match name {
            Name::N => ("#n", "n"),
            Name::S => ("#s", "s"),
            Name::Missing => ("#m", "m"),
        };
        self.names
            .insert(placeholder.to_owned(), Value::from(attribute));
        placeholder
    }

    fn value(&mut self, l: Lit) -> String {
        let placeholder = format!(":v{}", self.values.len());
        let typed = match l {
            Lit::N(x) => json!({"N": x.to_string()}),
            Lit::S(x) => json!({"S": x}),
        };
        self.values.insert(placeholder.clone(), typed);
        placeholder
    }

    fn attribute(&mut self, l: Lit) -> &'static str {
        match l {
            Lit::N(_) => self.name(Name::N),
            Lit::S(_) => self.name(Name::S),
        }
    }

    /// The text of `tree`, and whether it is compound (needs parentheses as an operand).
    fn text(&mut self, tree: &Tree) -> (String, bool) {
        match tree {
            Tree::Cmp(l, op) => {
                let symbol = match op {
                    Op::Eq => "=",
                    Op::Ne => "<>",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                };
                let a = self.attribute(*l);
                (format!("{a} {symbol} {}", self.value(*l)), false)
            }
            Tree::Between(lo, hi) => {
                let a = self.attribute(*lo);
                let (lo, hi) = (self.value(*lo), self.value(*hi));
                (format!("{a} BETWEEN {lo} AND {hi}"), false)
            }
            Tree::In(list) => {
                let a = list.first().map_or("#n", |l| self.attribute(*l));
                let values: Vec<String> = list.iter().map(|l| self.value(*l)).collect();
                (format!("{a} IN ({})", values.join(", ")), false)
            }
            Tree::BeginsWith(prefix) => {
                let a = self.name(Name::S);
                (
                    format!("begins_with({a}, {})", self.value(Lit::S(prefix))),
                    false,
                )
            }
            Tree::Exists(name, exists) => {
                let function = if *exists {
                    "attribute_exists"
                } else {
                    "attribute_not_exists"
                };
                (format!("{function}({})", self.name(*name)), false)
            }
            Tree::Not(t) => (format!("NOT {}", self.operand(t)), true),
            Tree::And(a, b) => (format!("{} AND {}", self.operand(a), self.operand(b)), true),
            Tree::Or(a, b) => (format!("{} OR {}", self.operand(a), self.operand(b)), true),
        }
    }

    fn operand(&mut self, tree: &Tree) -> String {
        match self.text(tree) {
            (text, true) => format!("({text})"),
            (text, false) => text,
        }
    }
}

/// Generates a condition and three items from `data`; the real parser must accept the
/// condition and the real evaluator must agree with [`evaluate`] on every item.
pub fn expression_differential(data: &[u8]) {
    let mut draw = Draw(data);
    let tree = generate(&mut draw, 0);
    let items: Vec<Item> = (0..3)
        .map(|_| Item {
            n: draw.number(),
            s: draw.string(),
        })
        .collect();
    let mut render = Render {
        names: Map::new(),
        values: Map::new(),
    };
    let (text, _) = render.text(&tree);
    let request = json!({
        "ExpressionAttributeNames": render.names,
        "ExpressionAttributeValues": render.values,
    });
    let subs = match Substitutions::from_request(&request) {
        Ok(subs) => subs,
        Err(e) => panic!("{text}: substitutions refused: {e}"),
    };
    let cond = match expr::parse_condition(&text, &subs, "ConditionExpression") {
        Ok(cond) => cond,
        Err(e) => panic!("a valid condition was refused: {text} ({e}); {request}"),
    };
    for item in &items {
        let typed = ddb_model::value::item_from_json(&json!({
            "n": {"N": item.n.to_string()},
            "s": {"S": item.s},
        }));
        let Ok(typed) = typed else {
            panic!("test item n={} s={:?} does not parse", item.n, item.s);
        };
        let (ours, reference) = (cond.holds(&typed), evaluate(&tree, item));
        assert_eq!(
            ours, reference,
            "{text} on n={} s={:?}: parser+evaluator say {ours}, the reference {reference}",
            item.n, item.s
        );
    }
}
