//! `GET /openapi.json`: the API's description, written by hand beside the code it describes and
//! checked against the live service by schemathesis in the test suite.

use axum::http::header;
use axum::response::IntoResponse;

static DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn get() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
