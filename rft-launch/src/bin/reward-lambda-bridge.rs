//! `reward-lambda-bridge`: the reward Lambda Nova RFT jobs call; forwards each batch to the reward
//! server (or scores it in process). Deployed as `bootstrap` on `provided.al2023`; configured by
//! the environment (`REWARD_SERVER_URL`, `REWARD_NAME`, `REWARD_SERVER_TOKEN`, ...: see
//! `rft_launch::bridge`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .without_time() // CloudWatch stamps each line
        .init();
    rft_launch::bridge::run_lambda().await
}
