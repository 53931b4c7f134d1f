//! Host bindings for the four worlds of `sluice:plugin@0.1.0` (generated from `wit/`). The
//! authenticator world's bindings own the shared host interfaces; the other worlds reuse them.

pub mod authenticator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authenticator",
        exports: { default: async },
    });
}

pub mod authorizer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authorizer",
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::authenticator::sluice::plugin::types,
            "sluice:plugin/log": super::authenticator::sluice::plugin::log,
            "sluice:plugin/config": super::authenticator::sluice::plugin::config,
            "sluice:plugin/kv": super::authenticator::sluice::plugin::kv,
            "sluice:plugin/clock": super::authenticator::sluice::plugin::clock,
            "sluice:plugin/random": super::authenticator::sluice::plugin::random,
            "sluice:plugin/sealing": super::authenticator::sluice::plugin::sealing,
        },
    });
}

pub mod key_provider {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "key-provider",
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::authenticator::sluice::plugin::types,
            "sluice:plugin/log": super::authenticator::sluice::plugin::log,
            "sluice:plugin/config": super::authenticator::sluice::plugin::config,
            "sluice:plugin/kv": super::authenticator::sluice::plugin::kv,
            "sluice:plugin/clock": super::authenticator::sluice::plugin::clock,
            "sluice:plugin/random": super::authenticator::sluice::plugin::random,
            "sluice:plugin/sealing": super::authenticator::sluice::plugin::sealing,
        },
    });
}

pub mod replication_target {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "replication-target",
        exports: { default: async },
        // Reading the body awaits the store's stream.
        imports: { "sluice:plugin/object-body.[method]body-stream.read": async },
        with: {
            "sluice:plugin/types": super::authenticator::sluice::plugin::types,
            "sluice:plugin/log": super::authenticator::sluice::plugin::log,
            "sluice:plugin/config": super::authenticator::sluice::plugin::config,
            "sluice:plugin/kv": super::authenticator::sluice::plugin::kv,
            "sluice:plugin/clock": super::authenticator::sluice::plugin::clock,
            "sluice:plugin/random": super::authenticator::sluice::plugin::random,
            "sluice:plugin/sealing": super::authenticator::sluice::plugin::sealing,
            "sluice:plugin/object-body.body-stream": super::super::host_imports::BodyStream,
        },
    });
}

pub use authenticator::sluice::plugin::types;
