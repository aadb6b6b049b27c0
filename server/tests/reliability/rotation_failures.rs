//! A rotation that fails half-way must change nothing and leave the database
//! connection it ran on fit for the next request. On SQLite the rotation is
//! one script with its own BEGIN … COMMIT (storage::sessions::rotate), so a
//! statement that fails stops it inside a transaction the driver does not
//! track; these tests provoke that with a successor whose hash is taken.

use baton::domain::refresh_token::RefreshToken;
use baton::storage::sessions::{self as store, Rotation};
use baton::storage::{PoolSettings, StorageError, connect};

use crate::backend_test;
use crate::helpers::*;

/// The stored hash of a refresh token as a client holds it.
fn hash_of(token: &str) -> Vec<u8> {
    RefreshToken::presented(token)
        .expect("a well-formed refresh token")
        .hash()
        .0
        .to_vec()
}

fn rotation(presented: &str, successor_hash: Vec<u8>, now: i64) -> Rotation {
    Rotation {
        presented_hash: hash_of(presented),
        successor_id: uuid::Uuid::new_v4().to_string(),
        successor_hash,
        now,
        successor_expires_at: now + 60_000,
        user_agent: Some("rotation-failures".to_owned()),
    }
}

fn fresh_hash() -> Vec<u8> {
    RefreshToken::generate().hash().0.to_vec()
}

backend_test!(
    a_rotation_whose_successor_cannot_be_stored_changes_nothing_and_leaves_the_connection_usable,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let second = app.login_body(&user).await;
        let session = first.session_id();
        // One connection: the pool cannot hand out a different one afterwards.
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let db = connect(&app.settings.database_url(), &settings)
            .await
            .expect("a one-connection pool");
        let now = app.clock_now_millis();
        let before = store::find_session(&db, &session).await.unwrap().unwrap();

        let taken = hash_of(&second.refresh_token);
        let failed = store::rotate(&db, rotation(&first.refresh_token, taken, now + 1)).await;
        assert!(
            matches!(failed, Err(StorageError::UniqueViolation(_))),
            "a successor hash that is taken is refused: {failed:?}"
        );
        let presented = store::find_token(&db, &hash_of(&first.refresh_token))
            .await
            .unwrap()
            .expect("the presented token is still there");
        assert_eq!(presented.rotated_at, None, "the token was not claimed");
        let after = store::find_session(&db, &session).await.unwrap().unwrap();
        assert_eq!(after, before, "the session was not touched");
        assert_eq!(
            store::count_live_tokens(&db, &session, now).await.unwrap(),
            1
        );

        let rotated = store::rotate(&db, rotation(&first.refresh_token, fresh_hash(), now + 2))
            .await
            .expect("the same connection serves the next rotation")
            .expect("the token is still live, so it rotates");
        assert_eq!(rotated.session_id, session);
        assert_eq!(rotated.user_id, before.user_id);
        assert_eq!(
            store::count_live_tokens(&db, &session, now).await.unwrap(),
            1
        );
        db.close().await.unwrap();
    }
);

backend_test!(a_token_rotates_once_and_then_never_again, |app| {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let now = app.clock_now_millis();
    let db = &app.db;
    let once = store::rotate(db, rotation(&tokens.refresh_token, fresh_hash(), now + 1))
        .await
        .unwrap();
    assert!(once.is_some(), "a live token rotates");
    let twice = store::rotate(db, rotation(&tokens.refresh_token, fresh_hash(), now + 2))
        .await
        .unwrap();
    assert_eq!(twice, None, "a rotated token does not rotate again");
    assert_eq!(
        store::count_live_tokens(db, &tokens.session_id(), now)
            .await
            .unwrap(),
        1
    );
});

backend_test!(the_successor_never_outlives_its_session, |app| {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let now = app.clock_now_millis();
    let session = store::find_session(&app.db, &tokens.session_id())
        .await
        .unwrap()
        .unwrap();
    let mut far = rotation(&tokens.refresh_token, fresh_hash(), now + 1);
    far.successor_expires_at = session.absolute_expires_at + 86_400_000;
    let rotated = store::rotate(&app.db, far).await.unwrap().unwrap();
    assert_eq!(rotated.successor_expires_at, session.absolute_expires_at);
});
