//! The user's own prices: `[prices]` in streams' user config file,
//! `$XDG_CONFIG_HOME/streams/config.toml` (else `~/.config/streams/config.toml`), in the
//! plan's format (USD per million tokens, per model or `"*"`). They price every plan's agents
//! that do not state their cost; a plan's own `[prices]` entry for a model wins over the
//! user's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plan::model::Price;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserConfig {
    #[serde(default)]
    prices: BTreeMap<String, RawPrice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    #[serde(default)]
    input: f64,
    #[serde(default)]
    output: f64,
    #[serde(default)]
    cache_read: f64,
    #[serde(default)]
    cache_write: f64,
}

/// Where the user config is: `$XDG_CONFIG_HOME/streams/config.toml`, else under `$HOME`'s
/// `.config`; `None` when neither variable is set.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("streams").join("config.toml"))
}

/// The prices of the user config at `path` (none when it does not exist); an error names the
/// file and what is wrong in it.
pub fn user_prices(path: &Path) -> Result<BTreeMap<String, Price>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("could not read {}: {e}", path.display())),
    };
    let config: UserConfig = toml::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))?;
    Ok(config
        .prices
        .into_iter()
        .map(|(model, p)| {
            let price = Price {
                input: p.input,
                output: p.output,
                cache_read: p.cache_read,
                cache_write: p.cache_write,
            };
            (model, price)
        })
        .collect())
}

/// Adds the user's prices under the plan's: a model the plan prices keeps the plan's price.
pub fn add_user_prices(prices: &mut BTreeMap<String, Price>, user: BTreeMap<String, Price>) {
    for (model, price) in user {
        prices.entry(model).or_insert(price);
    }
}
