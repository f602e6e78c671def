//! Typed state: per socket ([`Socket::extensions`](crate::Socket::extensions))
//! and app-wide ([`SocketIoBuilder::state`](crate::SocketIoBuilder::state)).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

type Map = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

/// A map of Rust values keyed by their type: one value of each type, any
/// `Send + Sync + 'static` type, no serialization. Unlike the JSON
/// [`data`](crate::Socket::data), it stays on this node (it is neither sent
/// to other nodes by `fetch_sockets` nor kept by connection state recovery).
///
/// Values are read by clone ([`get`](Self::get)) or by reference inside a
/// closure ([`with`](Self::with)); the lock is never held across an `.await`.
///
/// ```
/// use socketio::Extensions;
/// #[derive(Clone, Debug, PartialEq)]
/// struct User { name: String }
///
/// let ext = Extensions::default();
/// assert!(ext.insert(User { name: "ann".into() }).is_none());
/// assert_eq!(ext.get::<User>().map(|u| u.name), Some("ann".into()));
/// assert_eq!(ext.with(|u: &User| u.name.len()), Some(3));
/// ext.with_mut(|u: &mut User| u.name.push('e'));
/// assert_eq!(ext.remove::<User>(), Some(User { name: "anne".into() }));
/// assert!(!ext.contains::<User>());
/// ```
#[derive(Default)]
pub struct Extensions {
    map: RwLock<Map>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Extensions").field("values", &len).finish()
    }
}

impl Extensions {
    /// Stores `value`, returning the value of the same type it replaces.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        let old = self
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(TypeId::of::<T>(), Box::new(value))?;
        old.downcast::<T>().ok().map(|b| *b)
    }

    /// A clone of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with(T::clone)
    }

    /// Calls `f` with a reference to the value of type `T`.
    pub fn with<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(&TypeId::of::<T>())?.downcast_ref::<T>().map(f)
    }

    /// Calls `f` with a mutable reference to the value of type `T`.
    pub fn with_mut<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.get_mut(&TypeId::of::<T>())?.downcast_mut::<T>().map(f)
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let old = self
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&TypeId::of::<T>())?;
        old.downcast::<T>().ok().map(|b| *b)
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&TypeId::of::<T>())
    }

    /// Drops every value.
    pub fn clear(&self) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
