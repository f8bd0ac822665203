//! The `letschat` binary: serves the chat (default), prints the OpenAPI or AsyncAPI document,
//! or manages administrators (`letschat admin ...`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use letschat::config::{Config, ServeArgs};
use letschat::startup::Application;

/// mimalloc instead of the system allocator: the server makes many small, short-lived
/// allocations on several threads (frames and messages built on one thread and freed on
/// another), which glibc's per-thread arenas handle with lock contention and fragmentation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "letschat",
    version,
    about = "Let's Chat: a self-hostable 1:1 chat server",
    after_help = "Every option can be given as the environment variable shown with it. Files and \
folders the server creates are private to its user (mode 0600 and 0700). `letschat admin --help` \
lists the administration commands (DATABASE_URL, LETSCHAT_DATA_DIR, LETSCHAT_BCRYPT_COST and \
LETSCHAT_ADMIN_PASSWORD)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat (the default).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document (YAML) to standard output.
    Openapi,
    /// Print the AsyncAPI document of the WebSocket protocol (JSON) to standard output.
    Asyncapi,
    /// Manage administrators, directly in the database (no server needed).
    #[command(
        after_help = "A new password is taken from --generate or --password-stdin when given, \
else from LETSCHAT_ADMIN_PASSWORD [default: none], else asked for on the terminal."
    )]
    Admin(letschat::cli::AdminArgs),
}

fn main() -> ExitCode {
    private_files();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => match letschat::openapi::yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("letschat: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Asyncapi) => {
            print!("{}", letschat::asyncapi::json());
            ExitCode::SUCCESS
        }
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Admin(args)) => letschat::cli::admin(args),
        None => serve(cli.serve),
    }
}

/// Files and folders the process creates are its user's only (0600, 0700): the database and
/// its WAL and shared-memory files, the generated secret, uploads and their folders.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    if let Err(e) =
        letschat::telemetry::init(args.log_filter.as_deref(), args.log_format.as_deref())
    {
        eprintln!("letschat: {e}");
        return ExitCode::from(2);
    }
    letschat::startup::raise_open_file_limit();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("letschat: {e}");
            return ExitCode::from(2);
        }
    };
    config.log_paths();
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(port = app.port(), "Let's Chat is listening");
        if let Some(addr) = app.metrics_addr() {
            tracing::info!(%addr, "metrics are served at /metrics");
        }
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("letschat: {e}");
            ExitCode::FAILURE
        }
    }
}
