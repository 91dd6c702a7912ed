//! Purview's `Remove-ElevatedAccessApprovalPolicy`: take one approval policy out of force by
//! removing the policy file that holds it (global admin only, validated, audited).

use std::sync::Arc;

use serde_json::json;

use super::{event, read_sources, require_admin, ApiError, PolicyRemoved, Principal, Service};

impl Service {
    /// Remove the policy file that holds rule `id` (or is named `id`), when that file holds
    /// that one rule only; the rest of the set must still load.
    pub fn remove_policy(&self, who: &Principal, id: &str) -> Result<PolicyRemoved, ApiError> {
        require_admin(who, "change policies")?;
        let current = self
            .policies
            .read()
            .map_err(|_| ApiError::internal("policy set unavailable"))?
            .clone();
        let file = match current.rule(id) {
            Some(rule) => rule
                .source
                .rsplit_once(':')
                .map_or(rule.source.as_str(), |(f, _)| f)
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            None if id.ends_with(".toml") => id.to_owned(),
            None => {
                return Err(ApiError::not_found(format!(
                    "no approval policy `{}` is in force",
                    crate::text::escape(id)
                )))
            }
        };
        let mut sources = read_sources(&self.policies_dir)?;
        let Some(pos) = sources.iter().position(|(name, _)| *name == file) else {
            return Err(ApiError::not_found(format!(
                "no policy file `{}` is in the policy folder",
                crate::text::escape(&file)
            )));
        };
        let (_, text) = sources.remove(pos);
        let own = crate::policy::PolicySet::from_sources(&[crate::policy::PolicySource::new(
            file.clone(),
            text,
        )])
        .map(|s| s.rules().len() == 1 && s.rules().iter().all(|r| r.id == id || file == id))
        .unwrap_or(false);
        if !own {
            return Err(ApiError::conflict(
                "policy_shared_file",
                format!(
                    "`{}` holds more than this policy; edit that file instead",
                    crate::text::escape(&file)
                ),
            ));
        }
        sources.sort();
        let set = crate::service::ports::policies_from_sources(&sources)
            .map_err(|e| ApiError::policy("policy_invalid", e))?;
        self.store.record(&mut |()| {
            self.append(event(
                &who.name,
                "policy.remove",
                &file,
                "ok",
                json!({ "rule": id }),
            ))?;
            Ok(self.webhook_note(format!("jitsh: {} removed policy file `{file}`", who.name)))
        })?;
        crate::atomic_write::remove(&self.policies_dir.join(&file))
            .map_err(|e| ApiError::internal(format!("policy file could not be removed: {e}")))?;
        let mut guard = self
            .policies
            .write()
            .map_err(|_| ApiError::internal("policy set unavailable"))?;
        *guard = Arc::new(set);
        Ok(PolicyRemoved {
            removed: file,
            rule: id.to_owned(),
        })
    }
}
