//! Generated requests ([`tally_testkit::rest_requests`]) thrown at the whole pure pipeline
//! (parse, plan, build) over a two-table schema cache. No input panics, and every refusal is a
//! PostgREST error: a 4xx (or PGRST201's 300), a PGRST code or a SQLSTATE, a message.
//! `PROPTEST_CASES` sets the number of cases (3,000 by default).

use axum::http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use tally_testkit::{
    generated::cases,
    rest_requests::{Vocabulary, request},
};

use super::tests::cache;
use crate::{
    error::RestError,
    request::{self, Target},
};

/// The schema cache's names.
fn vocabulary() -> Vocabulary {
    Vocabulary {
        names: vec![
            "id",
            "title",
            "data",
            "author_id",
            "name",
            "authors",
            "books",
        ],
        hints: vec!["inner", "left", "books_author_id_fkey", "author_id", "nope"],
        paths: vec!["/books", "/books", "/authors", "/rpc/nope"],
    }
}

/// A refusal as PostgREST makes one.
fn refused_in_shape(e: &RestError) -> Result<(), TestCaseError> {
    let code_ok = (e.code.len() == 8
        && e.code.starts_with("PGRST")
        && e.code[5..].bytes().all(|b| b.is_ascii_digit()))
        || (e.code.len() == 5
            && e.code
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    prop_assert!(code_ok, "code {:?} of {e:?}", e.code);
    prop_assert!(!e.message.is_empty(), "an empty message: {e:?}");
    prop_assert!(
        e.status.is_client_error() || (e.code == "PGRST201" && e.status.as_u16() == 300),
        "status {} for {e:?}",
        e.status
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(3_000)))]

    #[test]
    fn generated_rest_requests_are_answered_or_refused_in_postgrests_shape(
        generated in request(&vocabulary()),
    ) {
        let method = Method::from_bytes(generated.method.as_bytes()).unwrap_or(Method::GET);
        let mut headers = HeaderMap::new();
        for (name, value) in &generated.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(*name, value);
            }
        }
        let exposed = ["public".to_owned()];
        let parsed = request::parse(
            method.clone(),
            &generated.path,
            &generated.query,
            &headers,
            &generated.body,
            &exposed,
        );
        let request = match parsed {
            Ok(request) => request,
            Err(e) => return refused_in_shape(&e),
        };
        let cache = cache();
        let built = match (&request.target, &method) {
            (Target::Relation(name), &Method::GET | &Method::HEAD) => {
                super::read::build(&cache, &request, name).map(drop)
            }
            (Target::Relation(name), &Method::POST | &Method::PATCH | &Method::DELETE) => {
                super::write::build(&cache, &request, name).map(drop)
            }
            (Target::Rpc(name), &Method::GET | &Method::HEAD | &Method::POST) => {
                super::rpc::build(&cache, &request, name).map(drop)
            }
            // The handler refuses the other methods before building anything.
            _ => Ok(()),
        };
        if let Err(e) = built {
            refused_in_shape(&e)?;
        }
    }
}
