"""Generated gRPC stubs of proto/reward/v1/reward.proto (see gen_stubs.py); do not edit."""
