//! OpenAI and Anthropic are reached over HTTPS: the providers speak TLS, and check the server's
//! certificate against the platform's roots (here a private CA given by `SSL_CERT_FILE`, as an
//! operator would for an internal endpoint). A build with no TLS backend fails both tests.

use std::sync::Arc;
use std::time::Duration;

use quorum_experts::provider::anthropic::AnthropicConfig;
use quorum_experts::provider::openai::OpenAiConfig;
use quorum_experts::provider::retry::RetryConfig;
use quorum_experts::{ExpertConfig, Panel, ProviderConfig};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A TLS front for a plain HTTP server, with a certificate for `localhost` that only the roots in
/// `SSL_CERT_FILE` trust. Returns the front's port.
async fn tls_front(backend: std::net::SocketAddr, cert_file: &std::path::Path) -> u16 {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(cert_file, cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

fn expert(provider: ProviderConfig) -> ExpertConfig {
    ExpertConfig {
        name: "e".into(),
        provider,
        weight: 1.0,
        timeout: Duration::from_secs(20),
        breaker: Default::default(),
        retry: RetryConfig {
            max_retries: 0,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        rate_per_second: None,
        concurrency: 8,
    }
}

/// `SSL_CERT_FILE` is read when the first client is built; it must be set before any thread that
/// could read the environment starts, hence a plain `#[test]` that builds its runtime afterwards
/// (nextest runs each test in a process of its own).
#[allow(unsafe_code)] // set_var, before any other thread
fn with_private_ca(test: impl AsyncFnOnce(&std::path::Path)) {
    let dir = std::env::temp_dir().join(format!("quorum-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_file = dir.join("ca.pem");
    // SAFETY: no other thread exists yet in this test's process.
    unsafe { std::env::set_var("SSL_CERT_FILE", &cert_file) };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(test(&cert_file));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_openai_expert_answers_over_https() {
    with_private_ca(async |cert_file| {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "choices": [{"message": {"role": "assistant", "content": "Paris"}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 1}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let port = tls_front(*server.address(), cert_file).await;
        let e = expert(ProviderConfig::Openai(OpenAiConfig {
            base_url: format!("https://localhost:{port}/v1"),
            model: "gpt-test".into(),
            api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
            structured_output: false,
            max_tokens: None,
        }));
        let (reply, _) = Panel::new(vec![e.clone()]).ask(&e, "capital?").await;
        assert_eq!(reply.expect("an answer over https").answer, "Paris");
    });
}

#[test]
fn an_anthropic_expert_answers_over_https_and_an_untrusted_certificate_is_refused() {
    with_private_ca(async |cert_file| {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "content": [{"type": "text", "text": "Paris"}],
                "usage": {"input_tokens": 7, "output_tokens": 1}
            })))
            .mount(&server)
            .await;
        let port = tls_front(*server.address(), cert_file).await;
        let ask = async |host: &str| {
            let e = expert(ProviderConfig::Anthropic(AnthropicConfig {
                base_url: format!("https://{host}:{port}"),
                model: "claude-test".into(),
                api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
                max_tokens: 64,
                structured_output: false,
            }));
            Panel::new(vec![e.clone()]).ask(&e, "capital?").await.0
        };
        assert_eq!(ask("localhost").await.expect("an answer").answer, "Paris");
        // The certificate names localhost only: the same server by address is not trusted.
        let refused = ask("127.0.0.1")
            .await
            .expect_err("a certificate for another name");
        assert!(
            format!("{refused:?}")
                .to_lowercase()
                .contains("certificate"),
            "{refused:?}"
        );
    });
}
