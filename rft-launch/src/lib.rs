//! Companion to the reward server for Amazon Nova reinforcement fine-tuning (RFT).
//!
//! Nova RFT jobs (SageMaker Training Jobs, SageMaker HyperPod, Bedrock) call a reward *Lambda* by
//! ARN, never an HTTP endpoint. This crate closes the gap:
//!
//! - [`bridge`]: the `reward-lambda-bridge` Lambda. It takes the Nova reward batch, forwards it to
//!   the reward server (HTTP Lambda-JSON door or gRPC) or scores it in process, and always answers
//!   a well-formed Nova array (same order, real ids), even when the server is down or slow.
//! - The `rft-launch` CLI: a TOML job spec ([`spec`]) is validated in full, then turned into a
//!   [`plan`] of concrete AWS requests (method, service, operation, JSON body), which `--dry-run`
//!   prints and [`aws::Executor`] sends, signed with SigV4.
//!
//! One module per job kind: [`job::smtj`], [`job::hyperpod`], [`job::bedrock`], [`job::bridge`]
//! (deploying the Lambda) and [`job::oss`] (snippets for OpenRLHF, veRL, TRL).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod bridge;
pub mod cli;
pub mod job;
pub mod plan;
pub mod recipes;
pub mod spec;
pub mod yaml;
