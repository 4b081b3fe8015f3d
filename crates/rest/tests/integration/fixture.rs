//! A library schema, and a client that speaks like postgrest-js.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tally_testkit::TestApp;

pub const SCHEMA: &str = r#"
create table public.authors (id int primary key, name text not null, data jsonb not null default '{}', tags text[] not null default '{}');
create table public.books (id int primary key, title text not null, author_id int references public.authors (id),
    editor_id int constraint books_editor_fkey references public.authors (id), pages int, published date, genre text);
create table public.reviewers (id int primary key, name text not null unique);
create table public.book_reviewers (book_id int references public.books (id), reviewer_id int references public.reviewers (id),
    primary key (book_id, reviewer_id));
create view public.long_books as select id, title, pages from public.books where pages > 300;
create function public.add(a int, b int default 10) returns int language sql immutable as 'select a + b';
create function public.books_by(author int) returns setof public.books language sql stable
    as 'select * from public.books where author_id = author';
create function public.touch() returns void language sql as 'select';
create function public.titles() returns table (title text, pages int) language sql stable
    as 'select title, pages from public.books order by id';
grant select, insert, update, delete on public.authors, public.books, public.reviewers, public.book_reviewers,
    public.long_books to anon, authenticated;
grant execute on function public.add(int, int), public.books_by(int), public.touch(), public.titles() to anon, authenticated;
insert into public.authors values (1, 'Ada', '{"city": "London", "age": 36}', '{math,poetry}'),
    (2, 'Grace', '{"city": "New York"}', '{navy,compilers}'), (3, 'Linus', '{}', '{}');
insert into public.books values (1, 'Notes', 1, 2, 120, '1843-01-01', 'science'), (2, 'Engines', 1, null, 420, '1842-06-01', 'science'),
    (3, 'Cobol Days', 2, 1, 350, '1960-01-01', 'history'), (4, 'Compilers', 2, null, 90, null, null);
insert into public.reviewers values (1, 'Rita'), (2, 'Sam');
insert into public.book_reviewers values (1, 1), (1, 2), (3, 2);
"#;

pub struct Rest {
    pub app: TestApp,
    http: reqwest::Client,
}

impl Rest {
    /// A Tally with the library schema loaded.
    pub async fn library() -> Self {
        Self::library_with(|_| {}).await
    }

    /// [`Rest::library`] with settings changed.
    pub async fn library_with(configure: impl FnOnce(&mut tally_core::Config)) -> Self {
        let app = TestApp::spawn_with(configure).await.unwrap();
        sqlx::raw_sql(SCHEMA).execute(&app.db.owner).await.unwrap();
        app.reload_schema().await.unwrap();
        Self {
            app,
            http: reqwest::Client::new(),
        }
    }

    /// Runs `sql` as the database's owner, then reloads the schema cache.
    pub async fn extend(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.app.db.owner)
            .await
            .unwrap();
        self.app.reload_schema().await.unwrap();
    }

    /// A Tally over its own schema only.
    pub async fn plain() -> Self {
        let app = TestApp::spawn().await.unwrap();
        Self {
            app,
            http: reqwest::Client::new(),
        }
    }

    /// A request with the anon key (as bearer too, like the clients).
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let key = self.app.keys.anon_key();
        self.as_token(method, path, &key)
    }

    /// A request with a bearer token.
    pub fn as_token(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, self.app.url(&format!("/rest/v1{path}")))
            .header("apikey", self.app.keys.anon_key())
            .header("authorization", format!("Bearer {token}"))
    }
}

/// Status, headers and JSON body.
pub async fn parts(res: Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

/// Status and error code of an error response (PostgREST's four keys present).
pub async fn error(res: Response) -> (u16, String) {
    let (status, _, body) = parts(res).await;
    for key in ["code", "message", "details", "hint"] {
        assert!(body.get(key).is_some(), "missing {key} in {body}");
    }
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}
