//! Rundeck's own filter cases, the corpus of real resource files, loading and
//! malformed input, against this implementation.

mod cases;
mod corpus;
mod loading;
mod malformed;
mod util;
