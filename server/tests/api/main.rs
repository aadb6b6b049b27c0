//! The API, specified as tests: the real server over real HTTP on a random
//! port, with a fresh database per test (an SQLite file, and a new
//! PostgreSQL and MariaDB database where those run).

mod helpers;

mod bad_input;
mod concurrency;
mod cookies_and_csrf;
mod discovery;
mod expiry;
mod jwt_attacks;
mod login;
mod logout;
mod multi_instance;
mod operations;
mod refresh;
mod register;
mod sessions;
