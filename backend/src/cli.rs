//! `letschat admin ...`: create or promote an administrator, list them, reset a password
//! (which also clears the account's login throttle), working on the
//! database of `DATABASE_URL` directly (the server need not run). There is no default admin
//! account: the first one is made with `letschat admin create`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::DEFAULT_DATABASE_URL;
use crate::db::Db;
use crate::domain::{DisplayName, Password, Username};
use crate::error::ApiError;
use crate::services::admin::{self, Ensured};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`.
    #[arg(long = "database-url", id = "admin_database_url", env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// bcrypt cost for a new account's password (4–31).
    #[arg(
        long = "bcrypt-cost",
        id = "admin_bcrypt_cost",
        env = "LETSCHAT_BCRYPT_COST"
    )]
    pub bcrypt_cost: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make USERNAME an administrator, creating the account when it does not exist. The new
    /// account's password is read from LETSCHAT_ADMIN_PASSWORD, or asked for on the terminal.
    Create {
        #[arg(long)]
        username: String,
        /// Display name of a new account (defaults to the username).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List the administrators.
    List,
    /// Set a new password for USERNAME: their sessions end and the account's login throttle is
    /// cleared (a running server sees both at once). The password is read from
    /// LETSCHAT_ADMIN_PASSWORD, or asked for on the terminal.
    ResetPassword {
        /// The account (any case).
        username: String,
    },
}

/// Runs `letschat admin ...`; messages go to standard output, errors to standard error.
pub fn admin(args: AdminArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("letschat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: AdminArgs) -> Result<(), String> {
    let url = args
        .database_url
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let cost = match args.bcrypt_cost.as_deref() {
        None => bcrypt::DEFAULT_COST,
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|c| (4..=31).contains(c))
            .ok_or_else(|| {
                format!("invalid LETSCHAT_BCRYPT_COST: '{raw}' is not a number in 4..=31")
            })?,
    };
    let db = Db::connect(&url, 1).map_err(|e| e.to_string())?;
    let mut conn = db
        .get()
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    match args.command {
        AdminCommand::Create {
            username,
            display_name,
        } => {
            let username = Username::parse(&username).map_err(explain)?;
            let display_name = display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(explain)?;
            let (user, outcome) = admin::ensure_admin(&mut conn, &username, display_name, || {
                let password = read_password().map_err(ApiError::internal)?;
                let password = Password::parse(&password)?;
                password.refuse_username(username.as_str())?;
                crate::auth::password::hash_sync(password.expose(), cost)
                    .map_err(ApiError::internal)
            })
            .map_err(explain)?;
            let what = match outcome {
                Ensured::Created => "created administrator",
                Ensured::Promoted => "promoted to administrator:",
                Ensured::AlreadyAdmin => "already an administrator:",
            };
            println!("{what} {} (id {})", user.username, user.id);
            Ok(())
        }
        AdminCommand::List => {
            let admins = admin::list_admins(&mut conn).map_err(explain)?;
            if admins.is_empty() {
                println!(
                    "no administrators; create one with `letschat admin create --username NAME`"
                );
            }
            for u in admins {
                let state = if u.deactivated_at.is_some() {
                    " (deactivated)"
                } else {
                    ""
                };
                println!("{}\t{}\t{}{state}", u.id, u.username, u.display_name);
            }
            Ok(())
        }
        AdminCommand::ResetPassword { username } => {
            let username = Username::parse(&username).map_err(explain)?;
            let exists =
                crate::db::users::find_by_username(&mut conn, &username.key()).map_err(explain)?;
            let Some(found) = exists else {
                return Err(format!("no account named '{}'", username.as_str()));
            };
            let password = ask_password(&format!("New password for {}: ", found.username))?;
            let password = Password::parse(&password).map_err(explain)?;
            password.refuse_username(&found.username).map_err(explain)?;
            let hash = crate::auth::password::hash_sync(password.expose(), cost)
                .map_err(|e| format!("bcrypt: {e}"))?;
            let user =
                crate::services::accounts::reset_password_offline(&mut conn, &username, &hash)
                    .map_err(explain)?;
            println!(
                "password reset for {} (id {}); sessions ended, login throttle cleared",
                user.username, user.id
            );
            Ok(())
        }
    }
}

fn explain(e: ApiError) -> String {
    match e {
        ApiError::Validation { message, .. } => message,
        other => other.to_string(),
    }
}

/// The new account's password: `LETSCHAT_ADMIN_PASSWORD`, or typed twice on the terminal
/// without echo.
fn read_password() -> Result<String, String> {
    ask_password("Password for the new administrator: ")
}

/// A password: `LETSCHAT_ADMIN_PASSWORD`, or typed twice on the terminal without echo after
/// `question`.
fn ask_password(question: &str) -> Result<String, String> {
    if let Ok(p) = std::env::var("LETSCHAT_ADMIN_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err("no terminal to ask for a password: set LETSCHAT_ADMIN_PASSWORD".to_owned());
    }
    let first = prompt(question)?;
    let second = prompt("Repeat the password: ")?;
    if first != second {
        return Err("the passwords differ".to_owned());
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<String, String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let echo_off = set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Turns terminal echo off or on with `stty`; true when it worked.
fn set_echo(on: bool) -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(tty)
        .status()
        .is_ok_and(|s| s.success())
}
