//! Pages of results and where the next one starts.

use std::future::Future;

use super::Cursor;

/// How many results a page holds, and where it starts.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// At most this many items (clamped to 1..=[`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// Where the previous page left off.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The largest page a caller may ask for.
    pub const MAX_LIMIT: u32 = 100;

    /// The first page, of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: u32, cursor: Cursor) -> Self {
        Self {
            limit,
            cursor: Some(cursor),
        }
    }

    #[cfg(any(test, feature = "test-util", feature = "aws"))]
    pub(crate) fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the query's order.
    pub items: Vec<T>,
    /// Where to continue, if there may be more.
    pub next: Option<Cursor>,
}

/// Every item of every page `fetch` returns, from the first page on, at the largest page size:
/// for a caller that needs all of a query (a period's records, the open grants on one role).
pub async fn every_page<T, E, F, Fut>(mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, E>>,
{
    let mut items = Vec::new();
    let mut request = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let page = fetch(request).await?;
        items.extend(page.items);
        match page.next {
            Some(next) => request = PageRequest::after(PageRequest::MAX_LIMIT, next),
            None => return Ok(items),
        }
    }
}
