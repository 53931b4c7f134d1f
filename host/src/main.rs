//! The `sluice` command line: serve, admin, plugin.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::auth::groups::PolicyTarget;
use sluice::auth::iam::AdminCommand;
use sluice::config::{Config, ConfigFlags};

/// jemalloc instead of glibc's malloc. Measured with 4 KiB objects (server CPU per request, same
/// host, alternating runs): GET ~171 -> ~148 us, PUT ~265 -> ~258 us. It returns freed memory:
/// glibc kept 150-200 MiB after a 1 MiB phase. (mimalloc saved as much CPU but held 207 MiB
/// after 1 MiB PUTs and GETs at c=32, against jemalloc's 50 MiB.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Validate Cedar policies and explain decisions
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Manage KMS keys of the configured key provider (offline on the data dir, or --endpoint)
    Kms {
        /// URL of a running server; signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
        #[arg(long, global = true)]
        endpoint: Option<String>,
        #[command(subcommand)]
        what: KmsCmd,
    },
    /// Encrypt a file client-side under a KMS key (envelope format in README)
    Encrypt(EnvelopeArgs),
    /// Decrypt a file made by `sluice encrypt`
    Decrypt(EnvelopeArgs),
}

#[derive(Subcommand)]
enum KmsCmd {
    /// Create a key and print its metadata
    Create {
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List keys
    List,
    /// Show one key
    Describe { key_id: String },
    /// Allow a key to wrap and unwrap data keys again
    Enable { key_id: String },
    /// Stop a key from wrapping or unwrapping (its objects become unreadable until enabled)
    Disable { key_id: String },
    /// Add a key version for new data keys; old versions still decrypt
    Rotate { key_id: String },
    /// Delete a key after a waiting period of 7 to 30 days
    ScheduleDeletion {
        key_id: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Cancel a scheduled deletion (the key comes back disabled)
    CancelDeletion { key_id: String },
}

impl KmsCmd {
    fn command(self) -> sluice::crypto::kms_admin::KmsCommand {
        use sluice::crypto::kms_admin::KmsCommand as C;
        match self {
            KmsCmd::Create { description } => C::Create { description },
            KmsCmd::List => C::List,
            KmsCmd::Describe { key_id } => C::Describe { key_id },
            KmsCmd::Enable { key_id } => C::Enable { key_id },
            KmsCmd::Disable { key_id } => C::Disable { key_id },
            KmsCmd::Rotate { key_id } => C::Rotate { key_id },
            KmsCmd::ScheduleDeletion { key_id, days } => C::ScheduleDeletion { key_id, days },
            KmsCmd::CancelDeletion { key_id } => C::CancelDeletion { key_id },
        }
    }
}

#[derive(clap::Args)]
struct EnvelopeArgs {
    /// The file to read
    input: std::path::PathBuf,
    /// Where to write the result
    #[arg(long, short)]
    output: std::path::PathBuf,
    /// KMS key for `encrypt` (id, ARN or alias; default alias/aws/s3)
    #[arg(long)]
    key_id: Option<String>,
    /// Encryption context as JSON (`{"name":"value"}`), bound to the data key
    #[arg(long)]
    context: Option<String>,
    /// URL of a running server; signs with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Validate the `*.cedar` files of DIR (default: the configured policies_dir, else
    /// ./policies) against the schema
    Check { dir: Option<std::path::PathBuf> },
    /// Decide one request and print allow/deny with the ids of the deciding policies
    Explain {
        /// e.g. 'Sluice::User::"alice"' (user name or id), 'Sluice::Role::"NAME"',
        /// 'Sluice::Anonymous::"anonymous"'
        #[arg(long)]
        principal: String,
        /// e.g. s3:GetObject
        #[arg(long)]
        action: String,
        /// bucket/key, bucket, `*` (the server) or key:ID
        #[arg(long)]
        resource: String,
        /// Context attributes as JSON, e.g. '{"source_ip":"10.0.0.1","secure_transport":true}'
        #[arg(long)]
        context: Option<String>,
        /// URL of a running server (its data dir is locked while it runs); signs with
        /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
        #[arg(long)]
        endpoint: Option<String>,
    },
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
    /// Groups of users (policies attached to a group apply to its members)
    #[command(subcommand)]
    Group(GroupCmd),
    /// Cedar policies attached to a user, a group or a role
    #[command(subcommand)]
    Policy(AttachCmd),
    /// Bucket replication: queue status, pause/resume, target credentials
    #[command(subcommand)]
    Replication(ReplicationCmd),
}

#[derive(Subcommand)]
enum ReplicationCmd {
    /// Rules, pause state, queue depth and lag of a bucket (JSON)
    Status { bucket: String },
    /// Hold a bucket's replication queue: writes are still queued, nothing is sent
    Pause { bucket: String },
    /// Release a paused bucket's queue
    Resume { bucket: String },
    /// Set the credentials Sluice signs with for a `[[replication_targets]]` entry (sealed at rest)
    Credentials {
        target: String,
        #[arg(long)]
        access_key: String,
        /// Prefer the environment variable: a command line is visible to other users
        #[arg(long, env = "SLUICE_TARGET_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
}

impl ReplicationCmd {
    fn command(self) -> sluice::replication::admin::ReplicationCommand {
        use sluice::replication::admin::ReplicationCommand as C;
        match self {
            ReplicationCmd::Status { bucket } => C::Status { bucket },
            ReplicationCmd::Pause { bucket } => C::Pause { bucket },
            ReplicationCmd::Resume { bucket } => C::Resume { bucket },
            ReplicationCmd::Credentials {
                target,
                access_key,
                secret_key,
            } => C::Credentials {
                target,
                access_key,
                secret_key,
            },
        }
    }
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Create a group
    Create { name: String },
    /// Delete a group and the policies attached to it
    Delete { name: String },
    /// List groups
    List,
    /// Show a group and its members
    Show { name: String },
    /// Add a user to a group
    AddUser { group: String, user: String },
    /// Remove a user from a group
    RemoveUser { group: String, user: String },
}

#[derive(clap::Args)]
struct TargetArgs {
    /// An IAM user (by name)
    #[arg(long)]
    user: Option<String>,
    /// An IAM group, or a plugin's group as PLUGIN:GROUP
    #[arg(long)]
    group: Option<String>,
    /// A role
    #[arg(long)]
    role: Option<String>,
}

impl TargetArgs {
    fn target(self) -> PolicyTarget {
        PolicyTarget {
            user: self.user,
            group: self.group,
            role: self.role,
        }
    }
}

#[derive(Subcommand)]
enum AttachCmd {
    /// Attach the Cedar policies of FILE (`-` for stdin) under NAME; their principal is set to
    /// the user, group or role named
    Attach {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        name: String,
        file: std::path::PathBuf,
    },
    /// Detach the policies attached under NAME
    Detach {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        name: String,
    },
    /// List attached policies (of one user, group or role, or all)
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
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

fn read_policy_file(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", file.display()))
}

impl AdminWhat {
    fn command(self) -> anyhow::Result<AdminCommand> {
        Ok(match self {
            AdminWhat::Group(GroupCmd::Create { name }) => AdminCommand::GroupCreate { name },
            AdminWhat::Group(GroupCmd::Delete { name }) => AdminCommand::GroupDelete { name },
            AdminWhat::Group(GroupCmd::List) => AdminCommand::GroupList,
            AdminWhat::Group(GroupCmd::Show { name }) => AdminCommand::GroupShow { name },
            AdminWhat::Group(GroupCmd::AddUser { group, user }) => {
                AdminCommand::GroupAddUser { group, user }
            }
            AdminWhat::Group(GroupCmd::RemoveUser { group, user }) => {
                AdminCommand::GroupRemoveUser { group, user }
            }
            AdminWhat::Policy(AttachCmd::Attach { target, name, file }) => {
                AdminCommand::PolicyAttach {
                    target: target.target(),
                    name,
                    policy: read_policy_file(&file)?,
                }
            }
            AdminWhat::Policy(AttachCmd::Detach { target, name }) => AdminCommand::PolicyDetach {
                target: target.target(),
                name,
            },
            AdminWhat::Policy(AttachCmd::List { target }) => AdminCommand::PolicyList {
                target: target.target(),
            },
            AdminWhat::Replication(_) => {
                anyhow::bail!("replication commands are handled by `admin_cli::replication`")
            }
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
        })
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
            Command::Admin {
                endpoint,
                what: AdminWhat::Replication(cmd),
            } => {
                let value =
                    sluice::admin_cli::replication(&config, endpoint.as_deref(), cmd.command())
                        .await?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(())
            }
            Command::Admin { endpoint, what } => {
                let value =
                    sluice::admin_cli::run(&config, endpoint.as_deref(), what.command()?).await?;
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
            Command::Policy(PolicyCmd::Check { dir }) => {
                let dir = dir
                    .or_else(|| config.policies_dir.clone())
                    .unwrap_or_else(|| std::path::PathBuf::from("policies"));
                let files = sluice::policy::files::policy_files(&dir)?;
                let policies = sluice::policy::files::load_dir(&dir)?;
                println!(
                    "{}: {} policies in {} files are valid",
                    dir.display(),
                    policies.len(),
                    files.len()
                );
                Ok(())
            }
            Command::Policy(PolicyCmd::Explain {
                principal,
                action,
                resource,
                context,
                endpoint,
            }) => {
                let context = match context {
                    Some(c) => Some(
                        serde_json::from_str(&c)
                            .map_err(|e| anyhow::anyhow!("--context is not JSON: {e}"))?,
                    ),
                    None => None,
                };
                let input = sluice::policy::explain::ExplainInput {
                    principal,
                    action,
                    resource,
                    context,
                };
                let value =
                    sluice::admin_cli::explain(&config, endpoint.as_deref(), &input).await?;
                let ids: Vec<&str> = value["determining_policies"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                println!(
                    "{} ({})",
                    value["decision"].as_str().unwrap_or("deny"),
                    if ids.is_empty() {
                        "no policy applies: default deny".to_string()
                    } else {
                        ids.join(", ")
                    }
                );
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(())
            }
            Command::Kms { endpoint, what } => {
                let value =
                    sluice::admin_cli::kms(&config, endpoint.as_deref(), what.command()).await?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(())
            }
            Command::Encrypt(a) => {
                sluice::admin_cli::envelope(
                    &config,
                    a.endpoint.as_deref(),
                    true,
                    &a.input,
                    &a.output,
                    a.key_id,
                    a.context,
                )
                .await
            }
            Command::Decrypt(a) => {
                sluice::admin_cli::envelope(
                    &config,
                    a.endpoint.as_deref(),
                    false,
                    &a.input,
                    &a.output,
                    a.key_id,
                    a.context,
                )
                .await
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
