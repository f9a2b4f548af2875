//! `hashgate keys generate`: a new Ed25519 key pair for signing filter manifests. The private
//! key goes to a file readable by its owner only (`--out`), or straight into AWS Secrets
//! Manager (`--secret-name`), never to the terminal; the public key is printed, for the
//! scanners' `HASHGATE_FILTER_PUBLIC_KEYS` (the template's `FilterPublicKeys`).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hashgate_core::manifest::SigningKey;

use crate::args::KeysGenerateArgs;

fn new_key() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for the key: {e}"))?;
    Ok(SigningKey::from_seed(seed))
}

pub fn generate(args: &KeysGenerateArgs) -> anyhow::Result<ExitCode> {
    if args.out.is_none() && args.secret_name.is_none() {
        bail!("say where the private key goes: --out FILE or --secret-name NAME");
    }
    let key = new_key()?;
    let public = key.public();
    let mut secret_arn = None;
    if let Some(path) = &args.out {
        // Created new (never over an existing key) with mode 0600 before anything is written.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).with_context(|| {
            format!(
                "{}: cannot create the key file (it must not exist yet)",
                path.display()
            )
        })?;
        writeln!(file, "{}", key.to_text()).with_context(|| format!("{}", path.display()))?;
        file.sync_all()?;
    }
    if let Some(name) = &args.secret_name {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        secret_arn = Some(runtime.block_on(async {
            let sdk = hashgate_aws::sdk_config().await;
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let out = client
                .create_secret()
                .name(name)
                .description("hashgate filter manifest signing key (Ed25519)")
                .secret_string(key.to_text())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the secret {name:?}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
            anyhow::Ok(out.arn().unwrap_or(name).to_string())
        })?);
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "public_key": public.to_text(),
                "key_id": public.id(),
                "private_key_file": args.out.as_ref().map(|p| p.display().to_string()),
                "secret_arn": secret_arn,
            })
        );
    } else {
        println!("public key: {}", public.to_text());
        println!("key id:     {}", public.id());
        if let Some(p) = &args.out {
            println!(
                "private key written to {} (mode 0600); keep it secret",
                p.display()
            );
        }
        if let Some(arn) = &secret_arn {
            println!("private key stored in the secret {arn}");
        }
        println!(
            "scanners trust it with HASHGATE_FILTER_PUBLIC_KEYS (template parameter FilterPublicKeys); \
             during a rotation list the old and the new key, comma-separated"
        );
    }
    Ok(ExitCode::SUCCESS)
}
