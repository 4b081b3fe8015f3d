//! Generated PostgREST requests for property tests: `select` with nested, aliased, hinted and
//! spread embeds, aggregates and casts, every filter operator with its modifiers, `or`/`and`
//! trees, `order`, paging, `Prefer`, `Accept`, profiles, `Range` and bodies — near-valid more
//! often than not (names from a [`Vocabulary`]), with random text mixed in.

use proptest::prelude::*;

/// The names requests use most: a schema's columns and relations, embed hints, paths.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    /// Columns and relations.
    pub names: Vec<&'static str>,
    /// Embed hints (`!inner`, a foreign key's name, a column).
    pub hints: Vec<&'static str>,
    /// Request paths (`/books`, `/rpc/f`).
    pub paths: Vec<&'static str>,
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `DELETE` or `PUT`.
    pub method: &'static str,
    /// The path after `/rest/v1`.
    pub path: String,
    /// The query string, percent-encoded (or, now and then, not quite).
    pub query: String,
    /// Headers (values may be ones HTTP cannot carry: a client drops those).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A request over `v`.
pub fn request(v: &Vocabulary) -> impl Strategy<Value = Request> + use<> {
    (
        prop::sample::select(vec!["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"]),
        prop_oneof![
            18 => prop::sample::select(v.paths.clone()).prop_map(str::to_owned),
            1 => "/[a-z/]{0,10}",
            1 => "/\\PC{0,8}",
        ],
        query(v),
        headers(),
        body(v),
    )
        .prop_map(|(method, path, query, headers, body)| Request {
            method,
            path,
            query,
            headers,
            body,
        })
}

/// A name: mostly the vocabulary's columns and relations, sometimes anything.
fn name(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    prop_oneof![
        40 => prop::sample::select(v.names.clone()).prop_map(str::to_owned),
        4 => "[a-z_]{1,8}",
        1 => "\\PC{0,6}",
        1 => "[(),.:!*\"\\\\ -]{1,4}",
    ]
}

/// A field: a name, a JSON path, a cast.
fn field(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    (
        name(v),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(
                (
                    prop::sample::select(vec!["->", "->>"]),
                    prop_oneof![name(v), (0i64..5).prop_map(|n| n.to_string())],
                ),
                1..3,
            ),
        ],
        prop::option::of(prop::sample::select(vec![
            "text", "int", "jsonb", "numeric", "nope", "int)", "",
        ])),
    )
        .prop_map(|(name, path, cast)| {
            let mut f = name;
            for (arrow, key) in path {
                f.push_str(arrow);
                f.push_str(&key);
            }
            if let Some(cast) = cast {
                f.push_str("::");
                f.push_str(cast);
            }
            f
        })
}

/// A `select=` list, embeds nested up to three deep.
fn select(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    let leaf = prop_oneof![
        4 => field(v),
        1 => (name(v), field(v)).prop_map(|(alias, f)| format!("{alias}:{f}")),
        1 => (field(v), prop::sample::select(vec!["count", "sum", "avg", "min", "max", "nope"]))
            .prop_map(|(f, agg)| format!("{f}.{agg}()")),
        1 => Just("count()".to_owned()),
        1 => Just("*".to_owned()),
    ];
    let v = v.clone();
    let item = leaf.prop_recursive(3, 24, 4, move |inner| {
        (
            prop::option::of(name(&v)),
            prop::bool::weighted(0.15),
            name(&v),
            prop::option::of(prop::sample::select(v.hints.clone())),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(alias, spread, rel, hint, items)| {
                let alias = alias.map(|a| format!("{a}:")).unwrap_or_default();
                let spread = if spread { "..." } else { "" };
                let hint = hint.map(|h| format!("!{h}")).unwrap_or_default();
                format!("{alias}{spread}{rel}{hint}({})", items.join(","))
            })
    });
    prop::collection::vec(item, 1..5).prop_map(|items| items.join(","))
}

/// An operator and its value, mostly as they belong together (a quantified comparison with a
/// `{a,b}` list, `in` with `(a,b)`, `is` with a keyword, full-text search with a language),
/// sometimes not.
fn condition() -> impl Strategy<Value = String> {
    let simple = prop::sample::select(vec![
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "match",
        "imatch",
        "isdistinct",
    ]);
    let matched = prop_oneof![
        4 => (simple.clone(), value()).prop_map(|(op, v)| format!("{op}.{v}")),
        2 => (
            simple,
            prop::sample::select(vec!["any", "all"]),
            prop::collection::vec("[a-z0-9 ]{0,4}", 0..4),
        )
            .prop_map(|(op, q, items)| format!("{op}({q}).{{{}}}", items.join(","))),
        2 => prop::collection::vec(value(), 0..4)
            .prop_map(|items| format!("in.({})", items.join(","))),
        1 => prop::sample::select(vec!["null", "true", "false", "unknown", "not_null"])
            .prop_map(|v| format!("is.{v}")),
        1 => (
            prop::sample::select(vec!["fts", "plfts", "phfts", "wfts"]),
            prop::option::of(prop::sample::select(vec!["english", "simple", "nope"])),
            "[a-z &|!]{0,12}",
        )
            .prop_map(|(op, lang, q)| match lang {
                Some(lang) => format!("{op}({lang}).{q}"),
                None => format!("{op}.{q}"),
            }),
        1 => (
            prop::sample::select(vec!["cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj"]),
            prop_oneof![
                "\\{[a-z0-9,]{0,6}\\}",
                "[\\[(][0-9]{0,3},[0-9]{0,3}[\\])]",
                "\\[[0-9,]{0,6}\\]",
            ],
        )
            .prop_map(|(op, v)| format!("{op}.{v}")),
    ];
    let mismatched = (
        prop::sample::select(vec!["eq", "in", "is", "fts", "cs", "nope", ""]),
        prop::option::of(prop::sample::select(vec![
            "(any)",
            "(all)",
            "(english)",
            "(",
        ])),
        value(),
    )
        .prop_map(|(op, m, v)| format!("{op}{}.{v}", m.unwrap_or_default()));
    (
        prop::bool::weighted(0.2),
        prop_oneof![9 => matched, 1 => mismatched],
    )
        .prop_map(|(not, c)| if not { format!("not.{c}") } else { c })
}

/// A filter value: plain, quoted, a list, a range, or anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 ]{0,8}",
        1 => "\"[a-z0-9,.()\\\\ ]{0,8}\"",
        1 => "[\\[(][0-9]{0,3},[0-9]{0,3}[\\])]",
        1 => "\\PC{0,10}",
        1 => (-1e12f64..1e12).prop_map(|n| n.to_string()),
    ]
}

/// A logic tree: `or=(a.eq.1,and(b.gt.2,not.c.is.null))`.
fn logic(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    let condition = (field(v), condition()).prop_map(|(f, c)| format!("{f}.{c}"));
    condition.prop_recursive(3, 16, 4, |inner| {
        (
            prop::bool::weighted(0.2),
            prop::sample::select(vec!["or", "and"]),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(not, word, items)| {
                format!(
                    "{}{word}({})",
                    if not { "not." } else { "" },
                    items.join(",")
                )
            })
    })
}

/// An `order=` list.
fn order(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    prop::collection::vec(
        (
            field(v),
            prop::option::of(prop::sample::select(vec!["asc", "desc", "up"])),
            prop::option::of(prop::sample::select(vec!["nullsfirst", "nullslast", "x"])),
        )
            .prop_map(|(f, dir, nulls)| {
                let mut term = f;
                for part in [dir, nulls].into_iter().flatten() {
                    term.push('.');
                    term.push_str(part);
                }
                term
            }),
        0..3,
    )
    .prop_map(|terms| terms.join(","))
}

/// A number as a client might send one (or not).
fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..100).prop_map(|n| n.to_string()),
        (i64::MIN..0).prop_map(|n| n.to_string()),
        Just("99999999999999999999".to_owned()),
        "[a-z]{0,3}",
    ]
}

/// An embed path prefix for a modifier: `authors.`, `a.b.`, or none.
fn prefix(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    prop::collection::vec(name(v), 0..3).prop_map(|path| {
        path.iter()
            .map(|p| format!("{p}."))
            .collect::<Vec<_>>()
            .concat()
    })
}

/// One query parameter.
fn parameter(v: &Vocabulary) -> impl Strategy<Value = (String, String)> + use<> {
    prop_oneof![
        2 => select(v).prop_map(|s| ("select".to_owned(), s)),
        4 => (field(v), condition()).prop_map(|(f, c)| (f, c)),
        2 => (prefix(v), prop::sample::select(vec!["or", "and", "not.or", "not.and"]), logic(v))
            .prop_map(|(p, word, tree)| (format!("{p}{word}"), format!("({tree})"))),
        1 => (prefix(v), order(v)).prop_map(|(p, o)| (format!("{p}order"), o)),
        1 => (prefix(v), prop::sample::select(vec!["limit", "offset"]), count())
            .prop_map(|(p, word, n)| (format!("{p}{word}"), n)),
        1 => (prop::sample::select(vec!["columns", "on_conflict"]), prop::collection::vec(name(v), 0..3))
            .prop_map(|(k, names)| (k.to_owned(), names.join(","))),
        1 => ("\\PC{0,6}", "\\PC{0,10}"),
    ]
}

/// Percent-encodes the characters a query string cannot carry raw (sometimes `&` too, so
/// values meet the parser whole; sometimes not, so they split).
fn encode(text: &str, keep_ampersand: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' if keep_ampersand => out.push('&'),
            '%' | '&' | '#' | '+' | '=' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut bytes = [0; 4];
                for b in c.encode_utf8(&mut bytes).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// The query string of some parameters, now and then with a stray `%`.
fn query(v: &Vocabulary) -> impl Strategy<Value = String> + use<> {
    (
        prop::collection::vec(parameter(v), 0..5),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.02),
    )
        .prop_map(|(params, raw_ampersands, stray)| {
            let mut q = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        encode(k, raw_ampersands),
                        encode(v, raw_ampersands)
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            if stray {
                q.push_str("&x=%z");
            }
            q
        })
}

/// The headers: Prefer, Accept, a profile, Range.
fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    (
        prop::collection::vec(
            prop::sample::select(vec![
                "return=representation",
                "return=minimal",
                "return=headers-only",
                "count=exact",
                "count=planned",
                "count=estimated",
                "resolution=merge-duplicates",
                "resolution=ignore-duplicates",
                "missing=default",
                "handling=strict",
                "handling=lenient",
                "tx=rollback",
                "tx=commit",
                "max-affected=1",
                "max-affected=-5",
                "max-affected=x",
                "timezone=UTC",
                "params=single-object",
                "nonsense",
                "",
            ]),
            0..4,
        ),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec![
                "application/json",
                "*/*",
                "text/csv",
                "application/vnd.pgrst.object+json",
                "application/vnd.pgrst.object+json;nulls=stripped",
                "application/vnd.pgrst.array+json;nulls=stripped",
                "application/vnd.pgrst.plan+json; for=\"application/json\"; options=analyze|verbose",
                "application/vnd.pgrst.plan+text; options=nonsense",
                "image/png",
            ]),
        ),
        prop::option::weighted(
            0.05,
            prop::sample::select(vec!["public", "private", "nope", ""]),
        ),
        prop::option::weighted(
            0.2,
            prop_oneof![
                (0i64..20, 0i64..40).prop_map(|(a, b)| format!("{a}-{b}")),
                "[0-9-]{0,6}",
            ],
        ),
    )
        .prop_map(|(prefer, accept, profile, range)| {
            let mut headers = Vec::new();
            let mut put = |name: &'static str, value: &str| headers.push((name, value.to_owned()));
            put("prefer", &prefer.join(", "));
            if let Some(accept) = accept {
                put("accept", accept);
            }
            if let Some(profile) = profile {
                put("accept-profile", profile);
                put("content-profile", profile);
            }
            if let Some(range) = range {
                put("range", &range);
            }
            headers
        })
}

/// A JSON value of a few levels.
fn json(v: &Vocabulary) -> impl Strategy<Value = serde_json::Value> + use<> {
    let v = v.clone();
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(name(&v), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: JSON (an object, a list of objects, anything) or bytes that are not JSON.
fn body(v: &Vocabulary) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => prop::collection::btree_map(name(v), json(v), 0..5)
            .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
        1 => prop::collection::vec(prop::collection::btree_map(name(v), json(v), 0..3), 0..3)
            .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
        1 => json(v).prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ]
}
