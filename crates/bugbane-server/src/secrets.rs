//! Fresh secrets from the operating system's RNG: passwords, tokens, client keys, salts,
//! session ids. One place, so every credential Bugbane mints has the same strength.

use bugbane_core::credentials::HashError;

/// 16 random bytes.
///
/// # Panics
/// If the OS RNG fails: an all-zero salt or key would be worse than stopping.
pub fn random_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Err(e) = getrandom::getrandom(&mut b) {
        panic!("the operating system's random number generator failed: {e}");
    }
    b
}

/// `n` random bytes, hex-encoded.
pub fn random_hex(n: usize) -> String {
    let mut out = String::with_capacity(n * 2);
    while out.len() < n * 2 {
        out.push_str(&hex::encode(random_bytes()));
    }
    out.truncate(n * 2);
    out
}

/// A new API token (shown once; only its hash is stored).
pub fn new_token() -> String {
    format!("bbt_{}", random_hex(24))
}

/// A new DSN public key.
pub fn new_public_key() -> String {
    random_hex(16)
}

/// A readable random password (no look-alike characters).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Hashes a password with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    bugbane_core::credentials::hash_password(password, &random_bytes())
}
