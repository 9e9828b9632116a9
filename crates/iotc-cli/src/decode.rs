//! `iotc decode`.

#[derive(clap::Args)]
pub struct Args {
    /// The ESP3 frame in hexadecimal.
    pub hex: String,
    /// The device's EEP, e.g. A5-02-05.
    #[arg(long)]
    pub eep: Option<String>,
    /// Add EEP shortcuts and raw values.
    #[arg(long)]
    pub full: bool,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
