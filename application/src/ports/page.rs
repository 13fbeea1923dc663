//! One page of a listing.

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// The page of a listing read one item past `limit`, each item with its position: the
    /// first `limit` items, and the last one's position as `next` if there was one more.
    pub fn from_one_more(mut rows: Vec<(C, T)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let mut items = Vec::with_capacity(rows.len());
        let mut next = None;
        for (position, item) in rows {
            next = Some(position);
            items.push(item);
        }
        Self {
            items,
            next: next.filter(|_| more),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_more_than_the_limit_means_a_next_page() {
        let rows = |n: u32| (1..=n).map(|i| (i, i * 10)).collect::<Vec<_>>();
        assert_eq!(
            Page::from_one_more(rows(3), 2),
            Page {
                items: vec![10, 20],
                next: Some(2)
            }
        );
        assert_eq!(
            Page::from_one_more(rows(2), 2),
            Page {
                items: vec![10, 20],
                next: None
            }
        );
        assert_eq!(
            Page::<u32, u32>::from_one_more(Vec::new(), 2),
            Page {
                items: Vec::new(),
                next: None
            }
        );
    }
}
