//! Tools offered to the model in tool-calling and agentic tests: their OpenAI specs, and
//! deterministic in-process implementations for the agentic runner (no network, no shell).

use serde_json::{json, Value};

/// The OpenAI `tools` entry for a named tool.
pub fn spec(name: &str) -> Option<Value> {
    let (desc, params) = match name {
        "get_weather" => (
            "Get the current weather for a city.",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ),
        "search_web" => (
            "Search the web and return result snippets.",
            json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        ),
        "set_timer" => (
            "Start a countdown timer.",
            json!({"type": "object", "properties": {"minutes": {"type": "number"}}, "required": ["minutes"]}),
        ),
        "send_email" => (
            "Send an email.",
            json!({"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}, "required": ["to", "subject", "body"]}),
        ),
        "calculator" => (
            "Evaluate an arithmetic expression with + - * / and parentheses.",
            json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
        ),
        "lookup" => (
            "Look up a fact: the price of an item or the population of a city.",
            json!({"type": "object", "properties": {"key": {"type": "string", "description": "an item or city name"}}, "required": ["key"]}),
        ),
        "convert_units" => (
            "Convert a value between units (miles, km, fahrenheit, celsius, gallons, litres).",
            json!({"type": "object", "properties": {"value": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}, "required": ["value", "from", "to"]}),
        ),
        _ => return None,
    };
    Some(
        json!({"type": "function", "function": {"name": name, "description": desc, "parameters": params}}),
    )
}

/// Runs a tool call for the agentic runner. Unknown tools and bad arguments give an
/// error text back to the model, as a real tool would.
pub fn execute(name: &str, args: &Value) -> String {
    match name {
        "calculator" => match args.get("expression").and_then(Value::as_str) {
            Some(e) => match calculate(e) {
                Ok(v) => format_number(v),
                Err(err) => format!("error: {err}"),
            },
            None => "error: give an `expression`".into(),
        },
        "lookup" => {
            let key = args
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_lowercase();
            let key = key
                .trim_start_matches("price of ")
                .trim_start_matches("population of ")
                .trim_matches(|c| c == '\'' || c == '"');
            match key {
                "notebook" => "price of notebook: 2.50".into(),
                "pen" => "price of pen: 0.65".into(),
                "chair" => "price of chair: 85".into(),
                "desk" => "price of desk: 240".into(),
                "lisbon" => "population of Lisbon: 545796".into(),
                "porto" => "population of Porto: 230300".into(),
                other => format!("no entry for {other:?}"),
            }
        }
        "convert_units" => {
            let v = args
                .get("value")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()));
            let from = args
                .get("from")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            let to = args
                .get("to")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase();
            match (v, convert(&from, &to)) {
                (Some(v), Some(f)) => format_number(f(v)),
                (None, _) => "error: give a numeric `value`".into(),
                (_, None) => format!("error: cannot convert {from} to {to}"),
            }
        }
        _ => format!("error: no tool named {name}"),
    }
}

fn unit(u: &str) -> &str {
    let u = u.trim();
    let singular = if u.ends_with("us") {
        u
    } else {
        u.trim_end_matches('s')
    };
    match singular {
        "mi" | "mile" => "mile",
        "km" | "kilometer" | "kilometre" => "km",
        "f" | "°f" | "fahrenheit" => "f",
        "c" | "°c" | "celsius" => "c",
        "gal" | "gallon" | "us gallon" => "gal",
        "l" | "liter" | "litre" => "l",
        other => other,
    }
}

fn convert(from: &str, to: &str) -> Option<fn(f64) -> f64> {
    Some(match (unit(from), unit(to)) {
        ("mile", "km") => |v| v * 1.609344,
        ("km", "mile") => |v| v / 1.609344,
        ("f", "c") => |v| (v - 32.0) * 5.0 / 9.0,
        ("c", "f") => |v| v * 9.0 / 5.0 + 32.0,
        ("gal", "l") => |v| v * 3.785411784,
        ("l", "gal") => |v| v / 3.785411784,
        _ => return None,
    })
}

fn format_number(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Evaluates `+ - * /` with parentheses and unary minus. No variables, no functions.
pub fn calculate(expr: &str) -> Result<f64, String> {
    let tokens: Vec<char> = expr.chars().filter(|c| !c.is_whitespace()).collect();
    if tokens.len() > 512 {
        return Err("expression too long".into());
    }
    let mut p = Parser {
        t: &tokens,
        i: 0,
        depth: 0,
    };
    let v = p.sum()?;
    if p.i != tokens.len() {
        return Err(format!("unexpected {:?}", tokens[p.i]));
    }
    if !v.is_finite() {
        return Err("division by zero".into());
    }
    Ok(v)
}

struct Parser<'a> {
    t: &'a [char],
    i: usize,
    depth: u32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.t.get(self.i).copied()
    }
    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.i += 1;
            let r = self.product()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.atom()?;
        while let Some(op @ ('*' | '/' | '×' | '÷')) = self.peek() {
            self.i += 1;
            let r = self.atom()?;
            v = if op == '*' || op == '×' {
                v * r
            } else {
                v / r
            };
        }
        Ok(v)
    }
    fn atom(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some('-') => {
                self.i += 1;
                Ok(-self.atom()?)
            }
            Some('(') => {
                self.depth += 1;
                if self.depth > 32 {
                    return Err("too deeply nested".into());
                }
                self.i += 1;
                let v = self.sum()?;
                if self.peek() != Some(')') {
                    return Err("missing )".into());
                }
                self.i += 1;
                self.depth -= 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
                    self.i += 1;
                }
                self.t[start..self.i]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .map_err(|_| "bad number".to_string())
            }
            Some(c) => Err(format!("unexpected {c:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calculator() {
        assert_eq!(calculate("3*2.5 + 4*0.65").unwrap(), 10.1);
        assert_eq!(calculate("-(2+3)*4").unwrap(), -20.0);
        assert_eq!(calculate("500 - 2*85 - 240").unwrap(), 90.0);
        assert!(calculate("1/0").is_err());
        assert!(calculate("2+").is_err());
        assert!(calculate("rm -rf /").is_err());
        assert!(calculate(&"(".repeat(100)).is_err());
    }

    #[test]
    fn tools_answer_and_refuse() {
        assert_eq!(
            execute("calculator", &json!({"expression": "545796/230300"})),
            "2.369935"
        );
        assert_eq!(
            execute("lookup", &json!({"key": "Notebook"})),
            "price of notebook: 2.50"
        );
        assert!(execute("lookup", &json!({"key": "moon"})).starts_with("no entry"));
        assert_eq!(
            execute(
                "convert_units",
                &json!({"value": 26.2, "from": "miles", "to": "km"})
            ),
            "42.164813"
        );
        assert_eq!(
            execute(
                "convert_units",
                &json!({"value": "350", "from": "Fahrenheit", "to": "Celsius"})
            ),
            "176.666667"
        );
        assert!(execute(
            "convert_units",
            &json!({"value": 1, "from": "parsec", "to": "km"})
        )
        .starts_with("error"));
        assert!(execute("shell", &json!({})).starts_with("error"));
        for name in [
            "get_weather",
            "search_web",
            "set_timer",
            "send_email",
            "calculator",
            "lookup",
            "convert_units",
        ] {
            assert!(spec(name).is_some());
        }
    }
}
