//! The synced tables and the columns a client may write in each.

/// A synced table.
#[derive(Debug)]
pub struct Table {
    /// Its name in `public`.
    pub name: &'static str,
    /// Columns a push may set (the server keeps `id`, `org_id`, `version`, `deleted_at` and
    /// the timestamps).
    pub writable: &'static [&'static str],
}

const VOCABULARY: &[&str] = &["key", "name", "description", "keywords", "archived_at"];

/// Every synced table: a person's logs and attachments' metadata, the org's projects, teams
/// and vocabulary.
pub const TABLES: &[Table] = &[
    Table {
        name: "time_logs",
        writable: &[
            "user_id",
            "project_id",
            "team_id",
            "activity_type_id",
            "work_mode_id",
            "task_category_id",
            "comment",
            "started_at",
            "ended_at",
            "duration_minutes",
            "source",
            "status",
            "billable",
            "tags",
        ],
    },
    Table {
        name: "attachments",
        writable: &["time_log_id"],
    },
    Table {
        name: "projects",
        writable: &[
            "team_id",
            "name",
            "code",
            "client_name",
            "aliases",
            "billable",
            "color",
            "archived_at",
        ],
    },
    Table {
        name: "teams",
        writable: &["department_id", "name"],
    },
    Table {
        name: "work_modes",
        writable: VOCABULARY,
    },
    Table {
        name: "activity_types",
        writable: VOCABULARY,
    },
    Table {
        name: "task_categories",
        writable: VOCABULARY,
    },
];

/// The synced table called `name`.
pub fn find(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Fields of a log a person sets, which classification must then leave alone (as
/// `log-create` locks them).
pub const LOCKABLE: &[&str] = &[
    "comment",
    "started_at",
    "ended_at",
    "duration_minutes",
    "project_id",
    "activity_type_id",
    "work_mode_id",
    "task_category_id",
    "tags",
    "billable",
];
