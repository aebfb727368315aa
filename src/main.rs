//! `idgate`: parse the command line, run the library, exit with its code. Nothing else.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = idgate::cli::Cli::parse();
    if let Err(error) = idgate::cli::run(cli).await {
        eprintln!("idgate: {error:#}");
        std::process::exit(error.exit_code());
    }
}
