//! The stand-in's ID-token signing keys: RSA 2048 keys generated at run time (never committed),
//! kept in one process-wide pool so that every stand-in in a test process shares the cost.
//!
//! Stand-ins ask for keys by index (#0, #1, #2...); a key is generated the first time any stand-in
//! asks for its index and reused by all later ones. Each stand-in's current key starts at #0 and
//! moves to the next index on [`super::StandIn::rotate_signing_key`].

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Modulus size of every signing key.
pub(super) const KEY_BITS: usize = 2048;
/// Length of a `kid`: Kakao's look like `3f96980381e451efad0d2ddd30e3d3` (30 hex characters).
const KID_LEN: usize = 30;

/// One RSA signing key with everything the stand-in publishes or signs with.
pub(super) struct SigningKey {
    /// Key id: the first 30 lowercase hex characters of SHA-256 over the big-endian modulus.
    pub(super) kid: String,
    /// The private key as PKCS#1 DER, the form `jsonwebtoken::EncodingKey::from_rsa_der` needs
    /// with the RustCrypto backend (it parses it with `from_pkcs1_der`).
    pub(super) private_der: Vec<u8>,
    /// The public key as published in the JWKS.
    pub(super) jwk: Jwk,
    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`, LF line ends, 64-character
    /// lines, a final newline: what `openssl rsa -pubout` writes), the HMAC secret of the
    /// algorithm-confusion fault.
    pub(super) public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A JWKS entry in Kakao's shape (`kid`, `kty`, `alg`, `use`, `n`, `e`, in that order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct Jwk {
    pub(super) kid: String,
    pub(super) kty: &'static str,
    pub(super) alg: &'static str,
    #[serde(rename = "use")]
    pub(super) use_: &'static str,
    /// Modulus, big-endian, base64url without padding.
    pub(super) n: String,
    /// Public exponent, big-endian, base64url without padding (`AQAB`).
    pub(super) e: String,
}

/// Why a key could not be made or a token signed (in practice never: the RNG cannot fail, 2048
/// bits is a valid size and the keys are well formed).
#[derive(Clone, Debug)]
pub(super) struct CryptoError(pub(super) String);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stand-in signing keys: {}", self.0)
    }
}

/// rand 0.9's thread RNG (a CSPRNG seeded from the operating system) behind the rand_core 0.10
/// traits that `rsa` 0.10 takes; the two rand_core versions do not share traits.
struct ThreadRng(rand::rngs::ThreadRng);

impl rsa::rand_core::TryRng for ThreadRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::RngCore::next_u32(&mut self.0))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::RngCore::next_u64(&mut self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for ThreadRng {}

/// The kid for a modulus (big-endian bytes).
pub(super) fn kid_for(modulus: &[u8]) -> String {
    let digest = Sha256::digest(modulus);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..KID_LEN].to_owned()
}

/// SPKI DER wrapped as PEM.
fn spki_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// Generate a fresh key.
fn generate() -> Result<SigningKey, CryptoError> {
    let private = rsa::PrivateKey::new(&mut ThreadRng(rand::rng()), KEY_BITS)
        .map_err(|e| CryptoError(e.to_string()))?;
    let private_der = private
        .to_pkcs1_der()
        .map_err(|e| CryptoError(e.to_string()))?
        .as_bytes()
        .to_vec();
    let public = private.to_public_key();
    let spki = public
        .to_public_key_der()
        .map_err(|e| CryptoError(e.to_string()))?;
    let modulus = public.n_bytes();
    let kid = kid_for(&modulus);
    Ok(SigningKey {
        jwk: Jwk {
            kid: kid.clone(),
            kty: "RSA",
            alg: "RS256",
            use_: "sig",
            n: URL_SAFE_NO_PAD.encode(&modulus),
            e: URL_SAFE_NO_PAD.encode(public.e_bytes()),
        },
        kid,
        private_der,
        public_pem: spki_pem(spki.as_bytes()),
    })
}

/// The process-wide pool, filled on demand in index order.
static POOL: Mutex<Vec<Arc<SigningKey>>> = Mutex::new(Vec::new());

/// Key #`index` of the pool, generating it (and any lower ones still missing) first. The pool
/// stays locked while generating, so two stand-ins asking for the same new key make it once.
pub(super) fn key(index: usize) -> Result<Arc<SigningKey>, CryptoError> {
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    while pool.len() <= index {
        pool.push(Arc::new(generate()?));
    }
    Ok(Arc::clone(&pool[index]))
}
