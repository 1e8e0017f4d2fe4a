use pm_server::config::{ServerCommand, MIN_SECRET_LEN};
use pm_server::{discovery, AppState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loaded = match pm_server::config::load() {
        Ok(loaded) => loaded,
        Err(e) => match e.downcast::<clap::Error>() {
            // --help, --version and bad arguments, as clap prints them.
            Ok(clap_error) => clap_error.exit(),
            Err(e) => return Err(e),
        },
    };
    let config = loaded.config;
    // What the installer asks for, before the log (their output is the point).
    match &config.command {
        Some(ServerCommand::Completions { shell }) => {
            let mut command = <pm_server::Config as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "pm-server", &mut std::io::stdout());
            return Ok(());
        }
        Some(ServerCommand::Man { dir }) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    clap_mangen::generate_to(
                        <pm_server::Config as clap::CommandFactory>::command(),
                        dir,
                    )
                })
                .map_err(|e| {
                    anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display())
                })?;
            return Ok(());
        }
        _ => {}
    }
    pm_server::logging::init(&config)?;
    if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "read the config file");
    }
    for note in &loaded.notes {
        tracing::info!("{note}");
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
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
        if config.database_url.is_some() {
            anyhow::bail!(
                "migrate --from writes pm's SQLite database in the data directory; to bring a \
                 Blazor Agile Board database into PostgreSQL, migrate it into a data directory \
                 first, then move it with `pm sync export` and `pm sync import` against a server \
                 started with --database-url"
            );
        }
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
    let database = match &config.database_url {
        Some(url) => pm_server::store::redact(url),
        None => config.database_path().display().to_string(),
    };
    tracing::info!(%addr, %database, port_file = %port_file.display(),
        epoch = %state.store.epoch(), "pm-server listening");
    let idle = pm_server::idle::idle(state.clone(), config.idle_shutdown_secs);
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {},
            _ = idle => {},
        }
    };
    let result = pm_server::serve(listener, state, stop).await;
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
