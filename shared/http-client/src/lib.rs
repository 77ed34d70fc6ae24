//! The one way Quorum builds an HTTP client.
//!
//! reqwest speaks TLS through rustls, and rustls needs a crypto provider. Quorum uses *ring*, which
//! async-nats already brings, rather than reqwest's default aws-lc-rs: one provider in the build
//! keeps rustls able to pick it on its own (async-nats builds its TLS config that way, and two
//! providers would make that panic), and spares every build a C library. With no default provider
//! reqwest panics when a client is built, so every client is built here, after the provider is
//! installed; clippy's `disallowed-methods` (clippy.toml) refuses the other constructors.
//!
//! Servers are checked against the platform's roots (`rustls-platform-verifier`: on Linux the
//! system store, which `SSL_CERT_FILE` and `SSL_CERT_DIR` override for a private CA).

use std::sync::Once;

/// A client builder, with the TLS provider installed.
#[allow(clippy::disallowed_methods)] // the one place that may
pub fn builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// A client with reqwest's defaults, with the TLS provider installed.
pub fn client() -> reqwest::Client {
    // Building fails only when the TLS backend cannot start (no provider, unreadable roots are
    // skipped by the verifier), which `install_tls_provider` has ruled out.
    builder()
        .build()
        .expect("an HTTP client with the ring TLS provider")
}

/// Makes *ring* the process's rustls provider, once. Anything else in the process that builds a
/// rustls config without naming a provider (the OTLP exporter's client) needs it too.
pub fn install_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only if a provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
