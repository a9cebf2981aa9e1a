//! How a `bureau` command fails: said on stderr as one line, exit status 1 (75 asks
//! systemd for a restart, see `main`). Each class keeps its cause, so that the daemon's
//! refusal, an unreachable daemon, a file of the caller's and a failure to start read apart.

use bureau_admin::client::ClientError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] bureau_core::config::ConfigError),
    /// `serve` or `helper` could not start.
    #[error(transparent)]
    Start(#[from] crate::serve::StartError),
    #[error(transparent)]
    BootEnv(#[from] crate::bootenv::BootEnvError),
    /// The daemon is not reachable, or refused; a refusal names the field it is about.
    #[error("{}", refusal(.0))]
    Daemon(#[from] ClientError),
    /// The daemon answered a success without the record it owes.
    #[error("the daemon's answer is empty")]
    Empty,
    /// The daemon's answer is not what this command reads.
    #[error("the daemon's answer: {0}")]
    Answer(#[from] serde_json::Error),
    /// A store on disk (`backup restore`, with the daemon stopped).
    #[error(transparent)]
    Store(#[from] bureau_store::StoreError),
    /// A file the command reads or writes.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the password: {0}")]
    Password(std::io::Error),
    #[error("the passwords differ")]
    PasswordsDiffer,
    /// An argument the command parses itself (`--rule`, `--share`).
    #[error(transparent)]
    Argument(#[from] BadValue),
    /// The command ran, and what it found is a failure: broken objects, a daemon that is
    /// not healthy, no setup token.
    #[error("{0}")]
    Found(String),
}

fn refusal(e: &ClientError) -> String {
    let field = match e {
        ClientError::Api(api, _) => api.field.as_deref(),
        _ => None,
    };
    let said = e.to_string();
    // Messages from the directory already name their field; it is not said twice.
    match field {
        Some(f) if !said.starts_with(&format!("{f}:")) => format!("{f}: {said}"),
        _ => said,
    }
}

/// A file's error, said with its path.
pub fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// An argument that is none of its forms (clap says which argument).
#[derive(Debug, thiserror::Error)]
#[error("{value}: {expected}")]
pub struct BadValue {
    pub value: String,
    pub expected: &'static str,
}
