//! Options checked against their rules before a job runs, as Rundeck checks
//! them before it starts an execution: a required option has a value, an
//! enforced one is among its allowed values, a value matches the option's
//! regular expression (the whole value, as Java's `matches`), each value of a
//! multivalued option on its own. A violation fails the job before any step,
//! naming the option — and never showing a secure option's value.

use std::collections::BTreeMap;

use crate::jobs::spec::OptionDef;
use crate::nodes::java;

/// Check `options` (the values a run was given, secure ones included)
/// against `defs`: the first violation, in the options' order.
pub fn check(defs: &[OptionDef], options: &BTreeMap<String, String>) -> Result<(), String> {
    for def in defs {
        let value = options.get(&def.name).map(String::as_str).unwrap_or("");
        let name = &def.name;
        if value.is_empty() {
            if def.required {
                return Err(format!("option {name} is required and has no value"));
            }
            continue;
        }
        let shown = |v: &str| {
            if def.secure {
                "its value".to_string()
            } else {
                format!("{v:?}")
            }
        };
        let each: Vec<&str> = if def.multivalued && !def.delimiter.is_empty() {
            value.split(def.delimiter.as_str()).collect()
        } else {
            vec![value]
        };
        let re = def
            .regex
            .as_deref()
            .map(java::whole_regex)
            .transpose()
            .map_err(|e| format!("option {name}: regex: {e}"))?;
        for v in each {
            if def.enforced && !def.values.is_empty() && !def.values.iter().any(|a| a == v) {
                return Err(format!(
                    "option {name}: {} is not one of its allowed values ({})",
                    shown(v),
                    def.values.join(", ")
                ));
            }
            if let (Some(re), Some(pattern)) = (&re, &def.regex) {
                if !re.is_match(v) {
                    return Err(format!(
                        "option {name}: {} does not match {pattern:?}",
                        shown(v)
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> OptionDef {
        OptionDef {
            name: name.into(),
            delimiter: ",".into(),
            ..OptionDef::default()
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_required_option_needs_a_value_and_an_optional_one_may_be_blank() {
        let mut d = def("env");
        d.required = true;
        d.regex = Some("prod|dev".into());
        assert_eq!(
            check(std::slice::from_ref(&d), &given(&[])).unwrap_err(),
            "option env is required and has no value"
        );
        assert!(check(std::slice::from_ref(&d), &given(&[("env", "")])).is_err());
        d.required = false;
        // Rundeck checks the regex of a given value only.
        assert!(check(&[d], &given(&[("env", "")])).is_ok());
    }

    #[test]
    fn the_regex_matches_the_whole_value_as_java_matches_does() {
        let mut d = def("port");
        d.regex = Some("[0-9]+".into());
        assert!(check(std::slice::from_ref(&d), &given(&[("port", "8080")])).is_ok());
        let e = check(&[d], &given(&[("port", "80; rm -rf /")])).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        // A pattern that would close the whole-value group is refused, not
        // turned into one that matches anything.
        let mut open = def("port");
        open.regex = Some("[0-9]+)|(?:.*".into());
        assert!(check(&[open], &given(&[("port", "$(reboot)")])).is_err());
    }

    #[test]
    fn enforced_values_and_multivalued_options_check_each_value() {
        let mut d = def("hosts");
        d.enforced = true;
        d.values = vec!["a".into(), "b".into()];
        d.multivalued = true;
        d.delimiter = " ".into();
        assert!(check(std::slice::from_ref(&d), &given(&[("hosts", "a b")])).is_ok());
        let e = check(&[d], &given(&[("hosts", "a c")])).unwrap_err();
        assert_eq!(
            e,
            "option hosts: \"c\" is not one of its allowed values (a, b)"
        );
    }

    #[test]
    fn a_secure_option_s_value_is_never_shown() {
        let mut d = def("pw");
        d.secure = true;
        d.regex = Some(".{12,}".into());
        let e = check(&[d], &given(&[("pw", "hunter2")])).unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("its value"), "{e}");
    }
}
