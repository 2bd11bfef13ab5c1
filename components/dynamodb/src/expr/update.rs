//! Update actions applied to an item (`SET`, `REMOVE`, `ADD`, `DELETE`).

use super::*;

/// The value at `steps` below `slot`, creating nothing: the parent must exist.
pub(super) fn slot_mut<'a>(
    item: &'a mut Item,
    steps: &[Step],
) -> Result<&'a mut AttrValue, DynamoError> {
    let Some((Step::Name(first), rest)) = steps.split_first() else {
        return Err(bad_path());
    };
    let mut current = item.get_mut(first).ok_or_else(bad_path)?;
    for step in rest {
        current = match (step, current) {
            (Step::Name(n), AttrValue::M(m)) => m.get_mut(n).ok_or_else(bad_path)?,
            (Step::Index(i), AttrValue::L(l)) => l.get_mut(*i).ok_or_else(bad_path)?,
            _ => return Err(bad_path()),
        };
    }
    Ok(current)
}

pub(super) fn set_path(item: &mut Item, path: &Path, value: AttrValue) -> Result<(), DynamoError> {
    let (last, parent) = match path.0.split_last() {
        Some(split) => split,
        None => return Err(bad_path()),
    };
    if parent.is_empty() {
        let Step::Name(name) = last else {
            return Err(bad_path());
        };
        item.insert(name.clone(), value);
        return Ok(());
    }
    match (last, slot_mut(item, parent)?) {
        (Step::Name(n), AttrValue::M(m)) => {
            m.insert(n.clone(), value);
        }
        // Past the end appends, as in DynamoDB.
        (Step::Index(i), AttrValue::L(l)) => match l.get_mut(*i) {
            Some(slot) => *slot = value,
            None => l.push(value),
        },
        _ => return Err(bad_path()),
    }
    Ok(())
}

pub(super) fn remove_path(item: &mut Item, path: &Path) -> Result<(), DynamoError> {
    let (last, parent) = match path.0.split_last() {
        Some(split) => split,
        None => return Err(bad_path()),
    };
    if parent.is_empty() {
        if let Step::Name(name) = last {
            item.remove(name);
        }
        return Ok(());
    }
    // As for SET, the parent must be there and be a map (a list for an index): only
    // the last step may be missing.
    match (last, slot_mut(item, parent)?) {
        (Step::Name(n), AttrValue::M(m)) => {
            m.remove(n);
        }
        (Step::Index(i), AttrValue::L(l)) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(bad_path()),
    }
    Ok(())
}

/// Whether `path`'s parent is in `item` as a container its last step can address:
/// DynamoDB refuses any update action on a path whose parent is not.
pub(super) fn check_parent(item: &Item, path: &Path) -> Result<(), DynamoError> {
    let Some((last, parent)) = path.0.split_last() else {
        return Err(bad_path());
    };
    if parent.is_empty() {
        return Ok(());
    }
    match (last, resolve(parent, item)) {
        (Step::Name(_), Some(AttrValue::M(_))) | (Step::Index(_), Some(AttrValue::L(_))) => Ok(()),
        _ => Err(bad_path()),
    }
}

pub(super) fn wrong_data_type() -> DynamoError {
    invalid("An operand in the update expression has an incorrect data type")
}

pub(super) fn add_to(
    current: Option<&AttrValue>,
    value: &AttrValue,
) -> Result<AttrValue, DynamoError> {
    pub(super) fn union<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        let mut out = a.to_vec();
        out.extend(b.iter().filter(|v| !a.contains(v)).cloned());
        out
    }
    Ok(match (current, value) {
        (None, AttrValue::N(_) | AttrValue::Ss(_) | AttrValue::Ns(_) | AttrValue::Bs(_)) => {
            value.clone()
        }
        (Some(AttrValue::N(a)), AttrValue::N(b)) => AttrValue::N(a.add(b)?),
        (Some(AttrValue::Ss(a)), AttrValue::Ss(b)) => AttrValue::Ss(union(a, b)),
        (Some(AttrValue::Ns(a)), AttrValue::Ns(b)) => AttrValue::Ns(union(a, b)),
        (Some(AttrValue::Bs(a)), AttrValue::Bs(b)) => AttrValue::Bs(union(a, b)),
        _ => return Err(wrong_data_type()),
    })
}

/// `None` when nothing is left of the set.
pub(super) fn delete_from(
    current: &AttrValue,
    value: &AttrValue,
) -> Result<Option<AttrValue>, DynamoError> {
    pub(super) fn minus<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|v| !b.contains(v)).cloned().collect()
    }
    let left = match (current, value) {
        (AttrValue::Ss(a), AttrValue::Ss(b)) => AttrValue::Ss(minus(a, b)),
        (AttrValue::Ns(a), AttrValue::Ns(b)) => AttrValue::Ns(minus(a, b)),
        (AttrValue::Bs(a), AttrValue::Bs(b)) => AttrValue::Bs(minus(a, b)),
        _ => return Err(wrong_data_type()),
    };
    let empty = matches!(&left, AttrValue::Ss(v) if v.is_empty())
        || matches!(&left, AttrValue::Ns(v) if v.is_empty())
        || matches!(&left, AttrValue::Bs(v) if v.is_empty());
    Ok((!empty).then_some(left))
}

/// The paths an update changes (for `UPDATED_OLD` / `UPDATED_NEW`).
pub fn updated_paths(actions: &[Action]) -> Vec<Path> {
    actions
        .iter()
        .map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => {
                p.clone()
            }
        })
        .collect()
}

/// Applies `actions` to `item`: every `SET` value is computed from the item as it was,
/// then the actions change it in order. Whether they may touch the key attributes is
/// [`refuse_key_updates`]'s to say, before the item is read.
pub fn apply(item: &Item, actions: &[Action]) -> Result<Item, DynamoError> {
    let values = actions
        .iter()
        .map(|a| match a {
            Action::Set(_, term) => term.eval(item).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = item.clone();
    for (action, value) in actions.iter().zip(values) {
        match action {
            Action::Set(path, _) => {
                if let Some(value) = value {
                    set_path(&mut out, path, value)?;
                }
            }
            Action::Remove(path) => remove_path(&mut out, path)?,
            Action::Add(path, value) => {
                let sum = add_to(path.resolve(&out), value)?;
                set_path(&mut out, path, sum)?;
            }
            Action::Delete(path, value) => {
                if !matches!(
                    value,
                    AttrValue::Ss(_) | AttrValue::Ns(_) | AttrValue::Bs(_)
                ) {
                    return Err(wrong_data_type());
                }
                check_parent(&out, path)?;
                if let Some(current) = path.resolve(&out).cloned() {
                    match delete_from(&current, value)? {
                        Some(left) => set_path(&mut out, path, left)?,
                        None => remove_path(&mut out, path)?,
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Refuses actions on a key attribute (`keys`): DynamoDB checks this before it reads
/// the item, so it is a `ValidationException` whatever the item and the condition.
pub fn refuse_key_updates(actions: &[Action], keys: &[&str]) -> Result<(), DynamoError> {
    for path in updated_paths(actions) {
        if let Some(Step::Name(top)) = path.0.first() {
            if keys.contains(&top.as_str()) {
                return Err(invalid(format!(
                    "One or more parameter values were invalid: Cannot update attribute {top}. This attribute is part of the key"
                )));
            }
        }
    }
    Ok(())
}
