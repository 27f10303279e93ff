//! The reward server's wire contract (`reward/v1/reward.proto`): generated message types, the
//! tonic client and server, and the encoded descriptor set for gRPC reflection.
#![allow(missing_docs, clippy::all)]

/// `reward.v1`: the native API.
pub mod v1 {
    tonic::include_proto!("reward.v1");
}

/// The encoded `FileDescriptorSet` of the API, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("reward_descriptor");
