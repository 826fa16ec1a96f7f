//! The one place where application errors become GraphQL errors with `extensions.code`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_graphql::{Error, ErrorExtensionValues, ErrorExtensions, Response, ServerError, Value};
use doetank_domain::DomainError;
use doetank_store::ExpectedVersion;

use crate::error::AppError;

impl ErrorExtensions for AppError {
    fn extend(&self) -> Error {
        match self {
            AppError::Domain(DomainError::RuleViolated { rule, message }) => {
                Error::new(format!("{rule} violated: {message}")).extend_with(|_, e| {
                    e.set("code", "RULE_VIOLATED");
                    e.set("rule", rule.code());
                    if let Some(n) = rule.number() {
                        e.set("ruleNumber", n);
                    }
                })
            }
            AppError::Domain(DomainError::InvalidInput { field, message }) => bad_input(field, message),
            AppError::BadInput { field, message } => bad_input(field, message),
            AppError::Domain(DomainError::NotCreated(what)) => {
                Error::new(format!("{what} not found")).extend_with(|_, e| e.set("code", "NOT_FOUND"))
            }
            AppError::NotFound { what, id } => {
                Error::new(format!("{what} {id} not found")).extend_with(|_, e| e.set("code", "NOT_FOUND"))
            }
            AppError::Domain(DomainError::AlreadyExists(what)) => {
                Error::new(format!("this {what} already exists"))
                    .extend_with(|_, e| e.set("code", "ALREADY_EXISTS"))
            }
            AppError::VersionConflict { stream_id, expected, actual } => Error::new(self.to_string())
                .extend_with(|_, e| {
                    e.set("code", "VERSION_CONFLICT");
                    e.set("streamId", stream_id.as_str());
                    // A number, as `actual` and the `expectedVersion` sent are (until the
                    // thirtieth session it was the number's text).
                    match expected {
                        ExpectedVersion::Exact(version) => e.set("expected", *version),
                        ExpectedVersion::NoStream => e.set("expected", 0),
                        ExpectedVersion::Any => e.set("expected", "any"),
                    }
                    e.set("actual", *actual);
                }),
            AppError::Unauthenticated(message) => {
                Error::new(message.as_str()).extend_with(|_, e| e.set("code", "UNAUTHENTICATED"))
            }
            AppError::Forbidden(message) => {
                Error::new(message.as_str()).extend_with(|_, e| e.set("code", "FORBIDDEN"))
            }
            AppError::Moved => {
                Error::new(self.to_string()).extend_with(|_, e| e.set("code", "READ_MODELS_MOVED"))
            }
            AppError::Store(_)
            | AppError::Codec(_)
            | AppError::Database(_)
            | AppError::Sqlite(_)
            | AppError::Interrupted(_) => {
                tracing::error!(error = %self, "internal error");
                Error::new("internal error; the server log has the details")
                    .extend_with(|_, e| e.set("code", "INTERNAL"))
            }
        }
    }
}

/// The code of a text that does not parse as GraphQL.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The code of a text that parses but does not fit the schema or its limits (an unknown field,
/// a missing or ill-typed argument, an operation to pick, nesting too deep).
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// The code of a request that is not a GraphQL request at all (not JSON, a batch).
pub const BAD_REQUEST: &str = "BAD_REQUEST";
/// The code of an operation sent by a method that may not carry it (a mutation over GET).
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// The answer in place of one that could not be serialised: a response is a tree of JSON
/// values, so this is not expected, but it must not panic.
pub const UNSERIALISABLE_ANSWER: &str =
    r#"{"errors":[{"message":"the answer could not be serialised","extensions":{"code":"INTERNAL"}}]}"#;
/// The code of a request body over the server's limit.
pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
/// The code of an operation refused because its WebSocket runs as many as it may.
pub const TOO_MANY_OPERATIONS: &str = "TOO_MANY_OPERATIONS";

/// The answer to a text that does not parse: async-graphql's error, with its code.
pub fn parse_failed(mut error: ServerError) -> Response {
    error.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", PARSE_FAILED);
    Response::from_errors(vec![error])
}

/// An answer refusing a request before GraphQL sees it, with `code`.
pub fn refused(code: &str, message: impl Into<String>) -> Response {
    answer_of(Error::new(message).extend_with(|_, e| e.set("code", code)))
}

/// An answer of `error` alone, which belongs to the request as a whole: it names no place in
/// the text (a location of line 0 would be none the spec allows).
pub fn answer_of(error: Error) -> Response {
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    Response::from_errors(vec![server_error])
}

/// Gives a code to the errors async-graphql raises itself, which come without one: those
/// without a path are the request's (validation, the operation to run, the limits), those
/// with one an argument or variable it could not coerce as it ran. Every error our
/// resolvers raise already has its code (`AppError::extend` above). Texts that do
/// not parse are answered before they run ([`parse_failed`]).
pub fn give_codes(response: &mut Response) {
    for error in &mut response.errors {
        if let Some(said) = unset_variable(&error.message) {
            error.message = said;
        }
        let extensions = error.extensions.get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code").is_none() {
            extensions.set("code", if error.path.is_empty() { VALIDATION_FAILED } else { "BAD_INPUT" });
        }
        count_error(extensions);
    }
}

/// What async-graphql means by "Variable a is not defined.": validation has already refused a
/// variable the operation does not declare, so at run time the text names one it declares,
/// without a default, that `variables` gives no value, as a playground user who left
/// Variables empty meets it (the text read as if the operation lacked the declaration).
fn unset_variable(message: &str) -> Option<String> {
    let name = message.strip_prefix("Variable ")?.strip_suffix(" is not defined.")?;
    Some(unset_variable_message(name))
}

/// What a variable the operation declares without a default, and `variables` leaves out, is
/// told.
pub fn unset_variable_message(name: &str) -> String {
    format!(
        "variable ${name} has no value: give it in `variables` (the operation declares no default for it)"
    )
}

/// Errors answered since the process started, by code and, for a business rule, the rule
/// (`""` for none): what `/metrics` shows as `doetank_graphql_errors_total`, so that an
/// operator sees refusals that answer 200 (a rule, a bad input) and which rules bite most.
/// Every answer's errors pass [`give_codes`]; an answer without errors costs nothing here.
/// Process-wide, as a server is one process.
static ERRORS_ANSWERED: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

fn count_error(extensions: &ErrorExtensionValues) {
    let text = |key: &str| match extensions.get(key) {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    };
    let key = (text("code"), text("rule"));
    *ERRORS_ANSWERED.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
}

/// How many errors have been answered, by (code, rule), in that order.
pub fn errors_answered() -> Vec<((String, String), u64)> {
    let counts = ERRORS_ANSWERED.lock().unwrap_or_else(PoisonError::into_inner);
    counts.iter().map(|(key, n)| (key.clone(), *n)).collect()
}

/// Whether `response` refuses its request as a whole (a text that does not parse or does not
/// fit the schema, a bad token, ...): no data, and no error that belongs to a field as it ran.
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// `response` as JSON, as the client gets it. A request error has no `data` entry: the GraphQL
/// spec leaves it out when an error was raised before execution began (`"data": null` would
/// say that execution ran and failed).
pub fn answer_json(response: &Response) -> serde_json::Result<String> {
    #[derive(serde::Serialize)]
    struct RequestError<'a> {
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
    }
    if is_request_error(response) {
        serde_json::to_string(&RequestError { errors: &response.errors, extensions: &response.extensions })
    } else {
        serde_json::to_string(response)
    }
}

/// The code of `response`'s first error, if it has one.
pub fn first_code(response: &Response) -> Option<&str> {
    let extensions = response.errors.first()?.extensions.as_ref()?;
    match extensions.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

fn bad_input(field: &str, message: &str) -> Error {
    Error::new(format!("invalid {field}: {message}")).extend_with(|_, e| {
        e.set("code", "BAD_INPUT");
        e.set("field", field);
    })
}

/// `.gql()?` turns any application result into a GraphQL result with the mapped error.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<AppError>> GqlResult<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.into().extend())
    }
}
