//! Filter expressions from `.filter(q => ...)`, evaluated in Rust against each
//! document. `None` stands for `undefined` (a missing field).

use convect_schema::{compare_optional, get_field_path, Value};
use serde_json::Value as Json;
use std::cmp::Ordering;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub enum Expr {
    Field(String),
    Literal(Option<Value>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

#[derive(Debug, Clone, Copy)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, Copy)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// Parses `{"$literal": v}` where `{"$undefined": null}` means undefined.
pub fn optional_value(j: &Json) -> Result<Option<Value>, String> {
    if let Json::Object(o) = j {
        if o.len() == 1 && o.contains_key("$undefined") {
            return Ok(None);
        }
    }
    Value::from_json(j).map(Some).map_err(|e| e.to_string())
}

impl Expr {
    pub fn parse(j: &Json) -> Result<Expr, String> {
        let Json::Object(o) = j else { return Err(format!("invalid filter expression: {j}")) };
        let (op, arg) = o.iter().next().filter(|_| o.len() == 1).ok_or_else(|| format!("invalid filter expression: {j}"))?;
        let pair = |arg: &Json| -> Result<(Box<Expr>, Box<Expr>), String> {
            match arg.as_array().map(Vec::as_slice) {
                Some([l, r]) => Ok((Box::new(Expr::parse(l)?), Box::new(Expr::parse(r)?))),
                _ => Err(format!("`{op}` takes two operands")),
            }
        };
        let list = |arg: &Json| -> Result<Vec<Expr>, String> {
            arg.as_array().ok_or_else(|| format!("`{op}` takes a list"))?.iter().map(Expr::parse).collect()
        };
        Ok(match op.as_str() {
            "$field" => Expr::Field(arg.as_str().ok_or("`$field` takes a string")?.to_owned()),
            "$literal" => Expr::Literal(optional_value(arg)?),
            "$eq" | "$neq" | "$lt" | "$lte" | "$gt" | "$gte" => {
                let (l, r) = pair(arg)?;
                let cmp = match op.as_str() {
                    "$eq" => CmpOp::Eq,
                    "$neq" => CmpOp::Neq,
                    "$lt" => CmpOp::Lt,
                    "$lte" => CmpOp::Lte,
                    "$gt" => CmpOp::Gt,
                    _ => CmpOp::Gte,
                };
                Expr::Compare(cmp, l, r)
            }
            "$add" | "$sub" | "$mul" | "$div" | "$mod" => {
                let (l, r) = pair(arg)?;
                let a = match op.as_str() {
                    "$add" => ArithOp::Add,
                    "$sub" => ArithOp::Sub,
                    "$mul" => ArithOp::Mul,
                    "$div" => ArithOp::Div,
                    _ => ArithOp::Mod,
                };
                Expr::Arith(a, l, r)
            }
            "$neg" => Expr::Neg(Box::new(Expr::parse(arg)?)),
            "$not" => Expr::Not(Box::new(Expr::parse(arg)?)),
            "$and" => Expr::And(list(arg)?),
            "$or" => Expr::Or(list(arg)?),
            other => return Err(format!("unknown filter operator `{other}`")),
        })
    }

    pub fn eval(&self, doc: &BTreeMap<String, Value>) -> Result<Option<Value>, String> {
        Ok(match self {
            Expr::Field(path) => get_field_path(doc, path).cloned(),
            Expr::Literal(v) => v.clone(),
            Expr::Compare(op, l, r) => {
                let ord = compare_optional(l.eval(doc)?.as_ref(), r.eval(doc)?.as_ref());
                Some(Value::Boolean(match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Neq => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Lte => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Gte => ord != Ordering::Less,
                }))
            }
            Expr::Arith(op, l, r) => Some(arith(*op, l.eval(doc)?, r.eval(doc)?)?),
            Expr::Neg(x) => Some(match x.eval(doc)? {
                Some(Value::Float64(f)) => Value::Float64(-f),
                Some(Value::Int64(i)) => Value::Int64(i.wrapping_neg()),
                other => return Err(format!("cannot negate {}", describe(&other))),
            }),
            Expr::Not(x) => Some(Value::Boolean(!truthy(&x.eval(doc)?))),
            Expr::And(xs) => Some(Value::Boolean(xs.iter().map(|x| x.eval(doc)).collect::<Result<Vec<_>, _>>()?.iter().all(truthy))),
            Expr::Or(xs) => Some(Value::Boolean(xs.iter().map(|x| x.eval(doc)).collect::<Result<Vec<_>, _>>()?.iter().any(truthy))),
        })
    }

    pub fn matches(&self, doc: &BTreeMap<String, Value>) -> Result<bool, String> {
        Ok(truthy(&self.eval(doc)?))
    }
}

fn truthy(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::Boolean(true)))
}

fn describe(v: &Option<Value>) -> &'static str {
    v.as_ref().map(Value::type_name).unwrap_or("undefined")
}

fn arith(op: ArithOp, l: Option<Value>, r: Option<Value>) -> Result<Value, String> {
    match (&l, &r) {
        (Some(Value::Float64(a)), Some(Value::Float64(b))) => Ok(Value::Float64(match op {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div => a / b,
            ArithOp::Mod => a % b,
        })),
        (Some(Value::Int64(a)), Some(Value::Int64(b))) => {
            let out = match op {
                ArithOp::Add => a.checked_add(*b),
                ArithOp::Sub => a.checked_sub(*b),
                ArithOp::Mul => a.checked_mul(*b),
                ArithOp::Div => a.checked_div(*b),
                ArithOp::Mod => a.checked_rem(*b),
            };
            out.map(Value::Int64).ok_or_else(|| "int64 arithmetic overflow or division by zero in filter".into())
        }
        _ => Err(format!("cannot do arithmetic on {} and {}", describe(&l), describe(&r))),
    }
}
