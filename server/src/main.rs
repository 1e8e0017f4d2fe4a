use clap::Parser;
use pm_server::config::{ServerCommand, MIN_SECRET_LEN};
use pm_server::{discovery, AppState, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PM_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    if let Some(ServerCommand::IssueToken {
        user_id,
        admin,
        ttl_days,
    }) = &config.command
    {
        let secret = config
            .jwt_secret
            .as_deref()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .ok_or_else(|| anyhow::anyhow!("issue-token needs --jwt-secret / PM_AUTH_JWT_SECRET ({MIN_SECRET_LEN}+ characters)"))?;
        let user = uuid::Uuid::parse_str(user_id.trim())
            .map_err(|_| anyhow::anyhow!("--user-id must be a UUID"))?;
        let roles = if *admin {
            vec!["admin".to_string()]
        } else {
            Vec::new()
        };
        println!(
            "{}",
            pm_server::auth::issue(
                secret,
                &user.to_string(),
                roles,
                pm_server::auth::ttl_secs(*ttl_days)?
            )?
        );
        return Ok(());
    }
    if let Some(ServerCommand::Migrate { from }) = &config.command {
        let database = config.database_path();
        let carried = pm_server::store::reference::migrate_from(from, &database).await?;
        println!("{} -> {}: {carried}", from.display(), database.display());
        return Ok(());
    }
    let data_dir = config.data_dir();
    let state = AppState::open(config.clone()).await?;
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let port_file = discovery::write(&data_dir, &config.host, addr.port())?;
    tracing::info!(%addr, database = %config.database_path().display(), port_file = %port_file.display(),
        epoch = %state.store.epoch(), "pm-server listening");
    let result = pm_server::serve(listener, state, shutdown_signal()).await;
    discovery::remove(&data_dir);
    tracing::info!("pm-server stopped");
    Ok(result?)
}

/// SIGINT (ctrl-c) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
