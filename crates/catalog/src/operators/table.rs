//! The operator accounts as an aligned text table, for a terminal (`monsoon operator list`).

use super::Account;

/// `accounts` as an aligned text table: a header, then one line per account with its name,
/// when it was made, and whether it is enabled (or since when it is disabled), times in UTC.
pub fn table(accounts: &[Account]) -> String {
    let minute = "%Y-%m-%d %H:%M UTC";
    let mut out = format!("{:<32}  {:<20}  state\n", "name", "created");
    for a in accounts {
        let state = match a.disabled_at {
            Some(at) => format!("disabled {}", at.format(minute)),
            None => "enabled".to_owned(),
        };
        let created = a.created_at.format(minute).to_string();
        out.push_str(&format!("{:<32}  {created:<20}  {state}\n", a.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn one_aligned_line_an_account_with_its_state() {
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 6, h, 30, 0).single();
        let account = |name: &str, disabled_at| Account {
            name: name.to_owned(),
            password_hash: String::new(),
            created_at: at(1).unwrap_or_default(),
            updated_at: at(1).unwrap_or_default(),
            disabled_at,
            last_sign_in_at: None,
        };
        let text = table(&[account("lan", None), account("minh", at(2))]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].starts_with("lan ") && lines[1].ends_with("  enabled"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("disabled 2026-12-06 02:30 UTC"),
            "{text}"
        );
        assert_eq!(
            lines[0].find("created"),
            lines[1].find("2026-12-06 01:30 UTC")
        );
    }
}
