//! The `sluice` command line: serve, admin, plugin.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::auth::iam::AdminCommand;
use sluice::config::{Config, ConfigFlags};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "S3-compatible object store with pluggable gates"
)]
struct Cli {
    #[command(flatten)]
    config: ConfigFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve S3 (and the admin API) on the configured address
    Serve,
    /// Manage users and access keys (offline on the data dir, or --endpoint a running server)
    Admin {
        /// URL of a running server; signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
        #[arg(long, global = true)]
        endpoint: Option<String>,
        #[command(subcommand)]
        what: AdminWhat,
    },
    /// Inspect WebAssembly plugins
    #[command(subcommand)]
    Plugin(PluginCmd),
}

#[derive(Subcommand)]
enum PluginCmd {
    /// Say which world a component implements, what it imports, and whether it can be loaded
    Check {
        /// The component (.wasm)
        file: std::path::PathBuf,
    },
    /// List the plugins a running server has loaded, with versions and call statistics
    List {
        /// URL of the running server; signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
        #[arg(long)]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum AdminWhat {
    /// Users
    #[command(subcommand)]
    User(UserCmd),
    /// Access keys
    #[command(subcommand)]
    Key(KeyCmd),
    /// Roles assumed through STS (AssumeRole, AssumeRoleWithWebIdentity)
    #[command(subcommand)]
    Role(RoleCmd),
}

#[derive(Subcommand)]
enum RoleCmd {
    /// Create a role whose trust is a Cedar condition over the principal, e.g.
    /// 'principal.plugin == "oidc" && principal.groups.contains("admins")'
    Create {
        name: String,
        #[arg(long)]
        trust: String,
    },
    /// Delete a role and end its sessions
    Delete { name: String },
    /// List roles
    List,
    /// Show a role
    Show { name: String },
    /// End every active session of a role now
    RevokeSessions { name: String },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user and its first access key
    Create { name: String },
    /// Delete a user and its keys
    Delete { name: String },
    /// List users
    List,
    /// Show a user and its keys (never secrets)
    Show { name: String },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create an access key for a user
    Create {
        #[arg(long)]
        user: String,
    },
    /// List access keys (never secrets)
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Enable a key
    Enable { access_key: String },
    /// Disable a key (requests with it fail at once)
    Disable { access_key: String },
    /// Replace a key with a new one for the same user
    Rotate { access_key: String },
    /// Delete a key
    Delete { access_key: String },
}

impl AdminWhat {
    fn command(self) -> AdminCommand {
        match self {
            AdminWhat::User(UserCmd::Create { name }) => AdminCommand::UserCreate { name },
            AdminWhat::User(UserCmd::Delete { name }) => AdminCommand::UserDelete { name },
            AdminWhat::User(UserCmd::List) => AdminCommand::UserList,
            AdminWhat::Role(RoleCmd::Create { name, trust }) => {
                AdminCommand::RoleCreate { name, trust }
            }
            AdminWhat::Role(RoleCmd::Delete { name }) => AdminCommand::RoleDelete { name },
            AdminWhat::Role(RoleCmd::List) => AdminCommand::RoleList,
            AdminWhat::Role(RoleCmd::Show { name }) => AdminCommand::RoleShow { name },
            AdminWhat::Role(RoleCmd::RevokeSessions { name }) => {
                AdminCommand::RoleRevokeSessions { name }
            }
            AdminWhat::User(UserCmd::Show { name }) => AdminCommand::UserShow { name },
            AdminWhat::Key(KeyCmd::Create { user }) => AdminCommand::KeyCreate { user },
            AdminWhat::Key(KeyCmd::List { user }) => AdminCommand::KeyList { user },
            AdminWhat::Key(KeyCmd::Enable { access_key }) => AdminCommand::KeyEnable { access_key },
            AdminWhat::Key(KeyCmd::Disable { access_key }) => {
                AdminCommand::KeyDisable { access_key }
            }
            AdminWhat::Key(KeyCmd::Rotate { access_key }) => AdminCommand::KeyRotate { access_key },
            AdminWhat::Key(KeyCmd::Delete { access_key }) => AdminCommand::KeyDelete { access_key },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => sluice::server::serve(config).await,
            Command::Admin { endpoint, what } => {
                let value =
                    sluice::admin_cli::run(&config, endpoint.as_deref(), what.command()).await?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(())
            }
            Command::Plugin(PluginCmd::Check { file }) => {
                let report =
                    tokio::task::spawn_blocking(move || sluice::plugins::check::check(&file))
                        .await?;
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
                report
                    .verdict
                    .map_err(|e| anyhow::anyhow!("cannot load: {e}"))
            }
            Command::Plugin(PluginCmd::List { endpoint }) => {
                let value = sluice::admin_cli::remote(
                    &config,
                    &endpoint,
                    "GET",
                    sluice::s3::admin::PLUGINS_PATH,
                    Vec::new(),
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}
