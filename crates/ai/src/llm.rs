//! The LLM path, by configuration: an OpenAI-compatible `/v1/chat/completions` asked for a
//! strict `json_schema` answer whose enums are the candidate ids (the org's projects and
//! vocabulary), with the parser's times given as facts (small models cannot do duration
//! arithmetic). The answer is validated against the same schema before it is used.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{candidates::Candidates, candidates::Term, endpoint::Endpoint, time::TimeFacts};

/// The prompt's version, recorded with every extraction.
pub const PROMPT_VERSION: &str = "tally-llm-1";

/// Why an LLM call gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A time-out, 429 or 5xx: worth retrying later.
    #[error("LLM unavailable: {0}")]
    Unavailable(String),
    /// The answer does not fit the schema.
    #[error("invalid LLM answer: {0}")]
    Invalid(String),
    /// Anything else (a 4xx: wrong key or model).
    #[error("LLM call failed: {0}")]
    Failed(String),
}

/// A valid answer.
#[derive(Debug, Clone)]
pub struct LlmAnswer {
    /// Project.
    pub project_id: Option<Uuid>,
    /// Activity type.
    pub activity_type_id: Option<Uuid>,
    /// Work mode.
    pub work_mode_id: Option<Uuid>,
    /// Task category.
    pub task_category_id: Option<Uuid>,
    /// Billable.
    pub billable: bool,
    /// The answer as received.
    pub raw: Value,
    /// Tokens used, when the server says.
    pub tokens: Option<i64>,
}

/// An OpenAI-compatible chat model.
pub struct Llm {
    endpoint: Endpoint,
}

impl Llm {
    /// A model at `base_url` (without `/v1`); calls time out after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Endpoint::new(base_url, "chat/completions", api_key, model, timeout)
            .map(|endpoint| Self { endpoint })
    }

    /// The model's name, recorded with every extraction.
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// Asks the model to file `text`.
    pub async fn ask(
        &self,
        text: &str,
        times: &TimeFacts,
        candidates: &Candidates,
    ) -> Result<LlmAnswer, LlmError> {
        let schema = schema(candidates);
        let body = json!({
            "model": self.endpoint.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": prompt(text, times, candidates).to_string()},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "time_entry", "strict": true, "schema": schema},
            },
        });
        let response = self.endpoint.post().json(&body).send().await.map_err(|e| {
            if e.is_timeout() || e.is_connect() {
                LlmError::Unavailable(e.to_string())
            } else {
                LlmError::Failed(e.to_string())
            }
        })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(LlmError::Unavailable(format!(
                "{} answered {status}",
                self.endpoint.url
            )));
        }
        if !status.is_success() {
            return Err(LlmError::Failed(format!(
                "{} answered {status}",
                self.endpoint.url
            )));
        }
        let reply: Value = response
            .json()
            .await
            .map_err(|e| LlmError::Unavailable(format!("unreadable answer: {e}")))?;
        let tokens = reply["usage"]["total_tokens"].as_i64();
        let content = reply["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| LlmError::Invalid("no message content".into()))?;
        let answer: Value = serde_json::from_str(content)
            .map_err(|e| LlmError::Invalid(format!("not JSON: {e}")))?;
        validate(&schema, &answer)?;
        let id = |field: &str| answer[field].as_str().and_then(|s| s.parse().ok());
        Ok(LlmAnswer {
            project_id: id("project_id"),
            activity_type_id: id("activity_type_id"),
            work_mode_id: id("work_mode_id"),
            task_category_id: id("task_category_id"),
            billable: answer["billable"].as_bool().unwrap_or(false),
            raw: answer,
            tokens,
        })
    }
}

const SYSTEM: &str = "You file time-tracking log entries. Pick each id only from the allowed \
    values given (null when nothing fits). Times are already parsed and given as facts; do not \
    compute durations. Answer with the JSON object only.";

fn prompt(text: &str, times: &TimeFacts, c: &Candidates) -> Value {
    let terms = |terms: &[Term]| -> Vec<Value> {
        terms
            .iter()
            .map(|t| json!({"id": t.id, "key": t.key, "name": t.name}))
            .collect()
    };
    json!({
        "log": text,
        "facts": {
            "started_at": times.started_at,
            "ended_at": times.ended_at,
            "duration_minutes": times.duration_minutes,
        },
        "projects": c.projects.iter().map(|p| json!({"id": p.id, "name": p.name, "code": p.code, "aliases": p.aliases})).collect::<Vec<_>>(),
        "activity_types": terms(&c.activity_types),
        "work_modes": terms(&c.work_modes),
        "task_categories": terms(&c.task_categories),
    })
}

/// The strict schema of an answer: every field required, ids only from the candidates.
pub fn schema(c: &Candidates) -> Value {
    let one_of = |ids: Vec<String>| {
        let mut values: Vec<Value> = ids.into_iter().map(Value::from).collect();
        values.push(Value::Null);
        json!({"enum": values})
    };
    let ids = |terms: &[Term]| terms.iter().map(|t| t.id.to_string()).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["project_id", "activity_type_id", "work_mode_id", "task_category_id", "billable"],
        "properties": {
            "project_id": one_of(c.projects.iter().map(|p| p.id.to_string()).collect()),
            "activity_type_id": one_of(ids(&c.activity_types)),
            "work_mode_id": one_of(ids(&c.work_modes)),
            "task_category_id": one_of(ids(&c.task_categories)),
            "billable": {"type": "boolean"},
        },
    })
}

fn validate(schema: &Value, answer: &Value) -> Result<(), LlmError> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| LlmError::Failed(format!("schema: {e}")))?;
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LlmError::Invalid(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates::Project;

    #[test]
    fn answers_outside_the_candidates_are_invalid() {
        let project = Project {
            id: Uuid::new_v4(),
            name: "Apollo".into(),
            code: None,
            aliases: vec![],
            billable: true,
        };
        let c = Candidates {
            projects: vec![project.clone()],
            ..Candidates::default()
        };
        let s = schema(&c);
        let ok = json!({"project_id": project.id, "activity_type_id": null, "work_mode_id": null,
                        "task_category_id": null, "billable": true});
        assert!(validate(&s, &ok).is_ok());
        let made_up = json!({"project_id": Uuid::new_v4(), "activity_type_id": null,
                             "work_mode_id": null, "task_category_id": null, "billable": true});
        assert!(matches!(validate(&s, &made_up), Err(LlmError::Invalid(_))));
        let missing = json!({"project_id": null});
        assert!(matches!(validate(&s, &missing), Err(LlmError::Invalid(_))));
        let extra = json!({"project_id": null, "activity_type_id": null, "work_mode_id": null,
                           "task_category_id": null, "billable": false, "duration": 3});
        assert!(matches!(validate(&s, &extra), Err(LlmError::Invalid(_))));
    }
}
