use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// RFC 7638 thumbprint of the public key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    /// PKCS#8 private key sealed with ChaCha20-Poly1305 under the master key.
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    /// Set when a newer key took over signing.
    pub retired_at: Option<i64>,
    /// A retired key stays in the JWKS until then.
    pub verify_until: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
