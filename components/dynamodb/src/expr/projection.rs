//! Projections: the parts of an item a `ProjectionExpression` names.

use super::*;

/// The item holding only `paths` of `item` (a projection).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        if let Some(value) = path.resolve(item) {
            insert_projected(&mut out, &path.0, value.clone());
        }
    }
    out
}

pub(super) fn insert_projected(
    out: &mut BTreeMap<String, AttrValue>,
    steps: &[Step],
    value: AttrValue,
) {
    let Some((Step::Name(first), rest)) = steps.split_first() else {
        return;
    };
    if rest.is_empty() {
        out.insert(first.clone(), value);
        return;
    }
    let slot = out.entry(first.clone()).or_insert_with(|| match rest[0] {
        Step::Name(_) => AttrValue::M(BTreeMap::new()),
        Step::Index(_) => AttrValue::L(Vec::new()),
    });
    insert_nested(slot, rest, value);
}

pub(super) fn insert_nested(slot: &mut AttrValue, steps: &[Step], value: AttrValue) {
    match (slot, steps.first()) {
        (AttrValue::M(m), Some(Step::Name(_))) => insert_projected(m, steps, value),
        (AttrValue::L(l), Some(Step::Index(_))) => {
            // Projected list elements keep their order, not their indexes.
            if steps.len() == 1 {
                l.push(value);
            } else {
                let mut inner = match steps[1] {
                    Step::Name(_) => AttrValue::M(BTreeMap::new()),
                    Step::Index(_) => AttrValue::L(Vec::new()),
                };
                insert_nested(&mut inner, &steps[1..], value);
                l.push(inner);
            }
        }
        _ => {}
    }
}
