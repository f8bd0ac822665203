//! `letschat admin ...`: create or promote an administrator, list them, reset a password
//! (which also clears the account's login throttle), working on the
//! database of `DATABASE_URL` directly (the server need not run). There is no default admin
//! account: the first one is made with `letschat admin create`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::db::Db;
use crate::domain::{DisplayName, Password, Username};
use crate::error::ApiError;
use crate::services::admin::{self, Ensured};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`: the server's database.
    /// [default: sqlite://<LETSCHAT_DATA_DIR>/letschat.db]
    #[arg(
        long = "database-url",
        id = "admin_database_url",
        value_name = "URL",
        env = "DATABASE_URL"
    )]
    pub database_url: Option<String>,
    /// The server's data folder, where its default SQLite database is. [default: ./data]
    #[arg(
        long = "data-dir",
        id = "admin_data_dir",
        value_name = "DIR",
        env = "LETSCHAT_DATA_DIR"
    )]
    pub data_dir: Option<String>,
    /// bcrypt cost for a new password (4–31). [default: 12]
    #[arg(
        long = "bcrypt-cost",
        id = "admin_bcrypt_cost",
        value_name = "COST",
        env = "LETSCHAT_BCRYPT_COST"
    )]
    pub bcrypt_cost: Option<String>,
}

/// Where a new password comes from: one of these, else `LETSCHAT_ADMIN_PASSWORD`, else the
/// terminal (typed twice, without echo).
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "generate")]
    pub password_stdin: bool,
    /// Generate a password (24 letters and digits) and print it.
    #[arg(long)]
    pub generate: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make USERNAME an administrator, creating the account when it does not exist. The new
    /// account's password is generated and printed (--generate), or read from standard input
    /// (--password-stdin), or LETSCHAT_ADMIN_PASSWORD, or asked for on the terminal.
    Create {
        #[arg(long)]
        username: String,
        /// Display name of a new account (defaults to the username).
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List the administrators.
    List,
    /// Set a new password for an account: its sessions end and its login throttle is cleared
    /// (a running server sees both at once). The password is generated and printed (--generate),
    /// or read from standard input (--password-stdin), or LETSCHAT_ADMIN_PASSWORD, or asked for
    /// on the terminal.
    ResetPassword {
        /// The account (any case).
        #[arg(long = "username", value_name = "NAME")]
        username: Option<String>,
        /// The account, instead of --username.
        #[arg(
            value_name = "USERNAME",
            conflicts_with = "username",
            required_unless_present = "username"
        )]
        account: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
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
    let data_dir = crate::config::data_dir(args.data_dir.as_deref()).map_err(|e| e.to_string())?;
    let url = crate::config::database_url(args.database_url.as_deref(), &data_dir)
        .map_err(|e| e.to_string())?;
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
            password: source,
        } => {
            let username = Username::parse(&username).map_err(explain)?;
            let display_name = display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(explain)?;
            let mut generated = None;
            let (user, outcome) = admin::ensure_admin(&mut conn, &username, display_name, || {
                let password = new_password(
                    &source,
                    "Password for the new administrator: ",
                    &mut generated,
                )
                .map_err(ApiError::internal)?;
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
            if let Some(password) = generated {
                println!("password: {password}");
            }
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
        AdminCommand::ResetPassword {
            username,
            account,
            password: source,
        } => {
            let username = username.or(account).unwrap_or_default();
            let username = Username::parse(&username).map_err(explain)?;
            let exists =
                crate::db::users::find_by_username(&mut conn, &username.key()).map_err(explain)?;
            let Some(found) = exists else {
                return Err(format!("no account named '{}'", username.as_str()));
            };
            let mut generated = None;
            let password = new_password(
                &source,
                &format!("New password for {}: ", found.username),
                &mut generated,
            )?;
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
            if let Some(password) = generated {
                println!("password: {password}");
            }
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

/// Characters of a generated password: letters and digits that cannot be mistaken for one
/// another (no `0`/`o`, `1`/`l`/`i`).
const GENERATED_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A new password: generated (and also put in `generated`, to be printed once it is in use),
/// read from standard input, `LETSCHAT_ADMIN_PASSWORD`, or typed on the terminal.
fn new_password(
    source: &PasswordArgs,
    question: &str,
    generated: &mut Option<String>,
) -> Result<String, String> {
    if source.generate {
        use rand::Rng;
        let mut rng = rand::rng();
        let password: String = (0..24)
            .map(|_| {
                let i = rng.random_range(0..GENERATED_ALPHABET.len());
                char::from(GENERATED_ALPHABET[i])
            })
            .collect();
        *generated = Some(password.clone());
        return Ok(password);
    }
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if let Ok(p) = std::env::var("LETSCHAT_ADMIN_PASSWORD") {
        return Ok(p);
    }
    ask_password(question)
}

/// A password typed twice on the terminal without echo after `question`.
fn ask_password(question: &str) -> Result<String, String> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "no terminal to ask for a password: set LETSCHAT_ADMIN_PASSWORD, or use --password-stdin or --generate"
                .to_owned(),
        );
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
