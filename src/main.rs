//! `kakao-login`: the server and its maintenance commands.

use clap::Parser;
use kakao_login::cli::{self, Cli, Command};
use kakao_login::{Application, Settings};

/// mimalloc instead of glibc's malloc: a third less CPU per request on the list pages in the
/// load benchmark, for a few MiB more peak RSS (the README's Performance section). Without
/// transparent huge pages (`no_thp`), which would take memory in 2 MiB pieces.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kakao_login::app::init_crypto();
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    kakao_login::telemetry::logging::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).await?;
            let addr = app.local_addr();
            let public = app.state.settings.public_url.clone();
            println!("kakao-login listening on http://{addr} (open {public}/)");
            app.run_until_signalled().await?;
            Ok(())
        }),
        Command::Migrate => cli::migrate(&settings),
        Command::Createsuperuser {
            email,
            name,
            noinput,
        } => cli::create_superuser(&settings, email, name, noinput),
        Command::Changepassword { email, stdin } => cli::change_password(&settings, &email, stdin),
        Command::Check => actix_web::rt::System::new().block_on(cli::check(&settings)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
