//! Evaluation of conditions and update terms against typed items.

use super::*;

pub(super) fn value_of<'a>(
    operand: &'a Operand,
    item: &'a Item,
) -> Option<std::borrow::Cow<'a, AttrValue>> {
    use std::borrow::Cow;
    match operand {
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Path(p) => p.resolve(item).map(Cow::Borrowed),
        Operand::Size(p) => {
            let n = match p.resolve(item)? {
                AttrValue::S(s) => s.len(),
                AttrValue::B(b) => b.len(),
                AttrValue::Ss(s) => s.len(),
                AttrValue::Ns(s) => s.len(),
                AttrValue::Bs(s) => s.len(),
                AttrValue::L(l) => l.len(),
                AttrValue::M(m) => m.len(),
                _ => return None,
            };
            Number::parse(&n.to_string())
                .ok()
                .map(|n| Cow::Owned(AttrValue::N(n)))
        }
    }
}

/// DynamoDB's order, defined only between two numbers, two strings or two binaries.
pub(super) fn order(a: &AttrValue, b: &AttrValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (AttrValue::N(x), AttrValue::N(y)) => Some(x.cmp(y)),
        (AttrValue::S(x), AttrValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttrValue::B(x), AttrValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality as DynamoDB compares: sets regardless of order.
pub fn same(a: &AttrValue, b: &AttrValue) -> bool {
    pub(super) fn set_eq<T: PartialEq>(x: &[T], y: &[T]) -> bool {
        x.len() == y.len() && x.iter().all(|v| y.contains(v))
    }
    match (a, b) {
        (AttrValue::Ss(x), AttrValue::Ss(y)) => set_eq(x, y),
        (AttrValue::Ns(x), AttrValue::Ns(y)) => set_eq(x, y),
        (AttrValue::Bs(x), AttrValue::Bs(y)) => set_eq(x, y),
        (AttrValue::L(x), AttrValue::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (AttrValue::M(x), AttrValue::M(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

impl Cond {
    /// Whether the condition holds for `item` (an absent item is the empty item).
    pub fn holds(&self, item: &Item) -> bool {
        match self {
            Cond::Compare(a, cmp, b) => {
                let (Some(a), Some(b)) = (value_of(a, item), value_of(b, item)) else {
                    // A missing operand equals nothing, so it is unequal to anything.
                    return *cmp == Cmp::Ne;
                };
                match cmp {
                    Cmp::Eq => same(&a, &b),
                    Cmp::Ne => !same(&a, &b),
                    _ => order(&a, &b).is_some_and(|o| match cmp {
                        Cmp::Lt => o.is_lt(),
                        Cmp::Le => o.is_le(),
                        Cmp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    }),
                }
            }
            Cond::Between(x, low, high) => {
                let (Some(x), Some(low), Some(high)) =
                    (value_of(x, item), value_of(low, item), value_of(high, item))
                else {
                    return false;
                };
                order(&low, &x).is_some_and(|o| o.is_le())
                    && order(&x, &high).is_some_and(|o| o.is_le())
            }
            Cond::In(x, list) => value_of(x, item).is_some_and(|x| {
                list.iter()
                    .any(|o| value_of(o, item).is_some_and(|v| same(&x, &v)))
            }),
            Cond::Exists(p) => p.resolve(item).is_some(),
            Cond::NotExists(p) => p.resolve(item).is_none(),
            Cond::Type(p, t) => match (p.resolve(item), value_of(t, item)) {
                (Some(v), Some(t)) => matches!(&*t, AttrValue::S(name) if name == v.type_name()),
                _ => false,
            },
            Cond::BeginsWith(a, b) => match (value_of(a, item), value_of(b, item)) {
                (Some(a), Some(b)) => match (&*a, &*b) {
                    (AttrValue::S(x), AttrValue::S(y)) => x.starts_with(y.as_str()),
                    (AttrValue::B(x), AttrValue::B(y)) => x.starts_with(y),
                    _ => false,
                },
                _ => false,
            },
            Cond::Contains(a, b) => match (value_of(a, item), value_of(b, item)) {
                (Some(a), Some(b)) => match (&*a, &*b) {
                    (AttrValue::S(x), AttrValue::S(y)) => x.contains(y.as_str()),
                    (AttrValue::Ss(x), AttrValue::S(y)) => x.contains(y),
                    (AttrValue::Ns(x), AttrValue::N(y)) => x.contains(y),
                    (AttrValue::Bs(x), AttrValue::B(y)) => x.contains(y),
                    (AttrValue::L(x), y) => x.iter().any(|v| same(v, y)),
                    _ => false,
                },
                _ => false,
            },
            Cond::And(a, b) => a.holds(item) && b.holds(item),
            Cond::Or(a, b) => a.holds(item) || b.holds(item),
            Cond::Not(a) => !a.holds(item),
        }
    }
}

pub(super) fn operand_type(op: &str, v: &AttrValue) -> DynamoError {
    invalid(format!(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {op}, operand type: {}",
        v.type_name()
    ))
}

pub(super) fn missing_attribute() -> DynamoError {
    invalid("The provided expression refers to an attribute that does not exist in the item")
}

pub(super) fn bad_path() -> DynamoError {
    invalid("The document path provided in the update expression is invalid for update")
}

impl Term {
    /// The value, computed from the item as it was before the update.
    pub(super) fn eval(&self, item: &Item) -> Result<AttrValue, DynamoError> {
        Ok(match self {
            Term::Value(v) => v.clone(),
            Term::Path(p) => p.resolve(item).cloned().ok_or_else(missing_attribute)?,
            Term::IfNotExists(p, t) => match p.resolve(item) {
                Some(v) => v.clone(),
                None => t.eval(item)?,
            },
            Term::ListAppend(a, b) => match (a.eval(item)?, b.eval(item)?) {
                (AttrValue::L(mut x), AttrValue::L(y)) => {
                    x.extend(y);
                    AttrValue::L(x)
                }
                (AttrValue::L(_), other) | (other, _) => {
                    return Err(operand_type("list_append", &other))
                }
            },
            Term::Plus(a, b) | Term::Minus(a, b) => {
                let op = if matches!(self, Term::Plus(..)) {
                    "+"
                } else {
                    "-"
                };
                match (a.eval(item)?, b.eval(item)?) {
                    (AttrValue::N(x), AttrValue::N(y)) => AttrValue::N(if op == "+" {
                        x.add(&y)?
                    } else {
                        x.add(&y.negated())?
                    }),
                    (AttrValue::N(_), other) | (other, _) => return Err(operand_type(op, &other)),
                }
            }
        })
    }
}
