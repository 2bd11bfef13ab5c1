//! The catalogue behind the fake: shows with casts generated from a seed, the
//! mutations tests apply to it, and rendering in TvMaze's JSON shape.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Every generated `updated` timestamp lies in the three years before this
/// instant (2023-11-14T22:13:20Z), so `/updates/shows?since=month` holds only
/// shows changed through the mutation hooks.
pub const GENERATED_BEFORE: i64 = 1_700_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    pub name: &'static str,
    pub code: &'static str,
    pub timezone: &'static str,
}

/// A person, shared (copy-on-write through [`Arc::make_mut`]) by every credit
/// that names them when generated: a person can be in many shows' casts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub country: Option<Country>,
    /// `YYYY-MM-DD`, or `None` (TvMaze's `null`).
    pub birthday: Option<String>,
    pub deathday: Option<String>,
    pub gender: Option<String>,
    pub has_image: bool,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Character {
    pub id: u64,
    pub name: String,
}

/// One entry of a show's cast: TvMaze's `{"person", "character", "self", "voice"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub person: Arc<Person>,
    pub character: Character,
    /// TvMaze's `self`: the person plays themselves.
    pub is_self: bool,
    pub voice: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: u64,
    pub name: String,
    pub country: Country,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Show {
    pub id: u64,
    pub name: String,
    /// TvMaze's `type`.
    pub kind: String,
    pub language: Option<String>,
    pub genres: Vec<String>,
    pub status: String,
    pub runtime: Option<u32>,
    pub premiered: Option<String>,
    pub ended: Option<String>,
    pub rating: Option<f64>,
    pub weight: u32,
    pub network: Option<Network>,
    pub summary: Option<String>,
    /// Unix seconds of the last change.
    pub updated: i64,
    pub cast: Vec<Credit>,
}

/// splitmix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(mix(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        unit(self.next_u64()) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn date(&mut self, from_year: u64, to_year: u64) -> String {
        let year = from_year + self.below(to_year.saturating_sub(from_year) + 1);
        let month = 1 + self.below(12);
        let day = 1 + self.below(28);
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// The splitmix64 finaliser: a good 64-bit hash of `z`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a hash to `[0, 1)`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const COUNTRIES: [Country; 8] = [
    Country {
        name: "United States",
        code: "US",
        timezone: "America/New_York",
    },
    Country {
        name: "United Kingdom",
        code: "GB",
        timezone: "Europe/London",
    },
    Country {
        name: "Canada",
        code: "CA",
        timezone: "America/Halifax",
    },
    Country {
        name: "Japan",
        code: "JP",
        timezone: "Asia/Tokyo",
    },
    Country {
        name: "Germany",
        code: "DE",
        timezone: "Europe/Busingen",
    },
    Country {
        name: "Norway",
        code: "NO",
        timezone: "Europe/Oslo",
    },
    Country {
        name: "Spain",
        code: "ES",
        timezone: "Europe/Madrid",
    },
    Country {
        name: "Korea, Republic of",
        code: "KR",
        timezone: "Asia/Seoul",
    },
];

const FIRST_NAMES: [&str; 24] = [
    "Mike",
    "Rachel",
    "Dean",
    "Alexander",
    "Natalie",
    "Colin",
    "Britt",
    "Eddie",
    "Mackenzie",
    "Jolene",
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "Søren",
    "Chloé",
    "François",
    "Małgorzata",
    "Ólafur",
    "Siobhán",
    "Ana",
    "Jürgen",
    "Noémie",
    "Dmitri",
];

const LAST_NAMES: [&str; 24] = [
    "Vogel",
    "Lefevre",
    "Norris",
    "Koch",
    "Martinez",
    "Ford",
    "Robertson",
    "Cahill",
    "Lintz",
    "Purdy",
    "Núñez",
    "Müller",
    "Ångström",
    "Dvořák",
    "O'Brien",
    "García",
    "Kowalczyk",
    "Øster",
    "Thorsdóttir",
    "Smith",
    "Nguyễn",
    "Brontë",
    "Ferreira",
    "Ivanov",
];

/// Whole names in scripts other than Latin.
const OTHER_SCRIPT_NAMES: [&str; 8] = [
    "渡辺 謙",
    "Анна Петрова",
    "김민수",
    "Γιώργος Παπαδόπουλος",
    "محمد علي",
    "山田 花子",
    "Олег Смирнов",
    "이지은",
];

const SHOW_WORDS: [&str; 24] = [
    "Dome",
    "Night",
    "River",
    "Café",
    "Kingdom",
    "Signal",
    "Harbour",
    "Crown",
    "Ødegaard",
    "Gold",
    "Shadows",
    "Frontier",
    "Bureau",
    "Mañana",
    "Station",
    "Garden",
    "Cipher",
    "Northern",
    "Lights",
    "Tide",
    "Empire",
    "Saga",
    "Bakery",
    "Ward",
];

const GENRES: [&str; 12] = [
    "Drama",
    "Comedy",
    "Science-Fiction",
    "Thriller",
    "Action",
    "Crime",
    "Romance",
    "Horror",
    "Fantasy",
    "Mystery",
    "Family",
    "Music",
];

const NETWORKS: [&str; 10] = [
    "CBS", "BBC One", "NRK1", "NHK", "ZDF", "HBO", "AMC", "TVE", "KBS2", "Global",
];

/// Shows and persons: the fake's whole state of the world.
#[derive(Debug)]
pub(crate) struct Catalog {
    page_size: u64,
    shows: BTreeMap<u64, Show>,
    /// Deleted show id → the timestamp of its deletion.
    deleted: BTreeMap<u64, i64>,
    persons: Vec<Arc<Person>>,
    rng: Rng,
    next_show_id: u64,
    next_person_id: u64,
    next_character_id: u64,
    /// The last timestamp a mutation handed out.
    clock: i64,
}

impl Catalog {
    pub(crate) fn generate(
        shows: usize,
        seed: u64,
        max_id_gap: u64,
        page_size: u64,
        empty_pages: &[u64],
    ) -> Self {
        let page_size = page_size.max(1);
        let mut catalog = Catalog {
            page_size,
            shows: BTreeMap::new(),
            deleted: BTreeMap::new(),
            persons: Vec::new(),
            rng: Rng::new(seed),
            next_show_id: 1,
            next_person_id: 1,
            next_character_id: 1,
            clock: GENERATED_BEFORE,
        };
        let empty: BTreeSet<u64> = empty_pages.iter().copied().collect();
        let mut id = 0;
        for i in 0..shows {
            id += 1 + catalog.rng.below(max_id_gap.saturating_add(1));
            while empty.contains(&(id / page_size)) {
                id = (id / page_size + 1) * page_size;
            }
            let mut show = catalog.random_show(id);
            match i {
                0 => show.cast = catalog.showcase_cast(),
                1 => show.cast.clear(),
                _ => {}
            }
            catalog.shows.insert(id, show);
        }
        catalog.next_show_id = id + 1;
        catalog
    }

    pub(crate) fn page_size(&self) -> u64 {
        self.page_size
    }

    pub(crate) fn show(&self, id: u64) -> Option<&Show> {
        self.shows.get(&id)
    }

    pub(crate) fn shows(&self) -> impl Iterator<Item = &Show> {
        self.shows.values()
    }

    /// The shows of index page `page`, or `None` past the last page (the one
    /// holding the highest live id). Pages before it may be empty.
    pub(crate) fn page(&self, page: u64) -> Option<Vec<&Show>> {
        let last = *self.shows.keys().next_back()? / self.page_size;
        if page > last {
            return None;
        }
        let start = page * self.page_size;
        let end = start + self.page_size;
        Some(self.shows.range(start..end).map(|(_, s)| s).collect())
    }

    /// Every show id ever seen, live or deleted, with its `updated`
    /// timestamp, in id order; only those at or after `since` if given.
    pub(crate) fn updates(&self, since: Option<i64>) -> Vec<(u64, i64)> {
        let live = self.shows.values().map(|s| (s.id, s.updated));
        let deleted = self.deleted.iter().map(|(id, at)| (*id, *at));
        let mut all: Vec<(u64, i64)> = live
            .chain(deleted)
            .filter(|(_, at)| since.is_none_or(|s| *at >= s))
            .collect();
        all.sort_unstable();
        all
    }

    /// A fresh timestamp for a mutation: now, but strictly after every one
    /// handed out before, so each change is visible as a change.
    fn tick(&mut self) -> i64 {
        self.clock = unix_now().max(self.clock + 1);
        self.clock
    }

    pub(crate) fn update_show(&mut self, id: u64, f: impl FnOnce(&mut Show)) -> bool {
        let updated = self.tick();
        let Some(show) = self.shows.get_mut(&id) else {
            return false;
        };
        f(show);
        show.id = id;
        show.updated = updated;
        true
    }

    pub(crate) fn add_show(&mut self, f: impl FnOnce(&mut Show)) -> u64 {
        let id = self.next_show_id;
        self.next_show_id += 1;
        let mut show = self.random_show(id);
        f(&mut show);
        show.id = id;
        show.updated = self.tick();
        self.shows.insert(id, show);
        id
    }

    pub(crate) fn delete_show(&mut self, id: u64) -> bool {
        if self.shows.remove(&id).is_none() {
            return false;
        }
        let at = self.tick();
        self.deleted.insert(id, at);
        true
    }

    fn random_show(&mut self, id: u64) -> Show {
        let r = &mut self.rng;
        let name = match r.below(4) {
            0 => format!("The {}", r.pick(&SHOW_WORDS)),
            1 => format!("{} {}", r.pick(&SHOW_WORDS), r.pick(&SHOW_WORDS)),
            2 => format!("{} of the {}", r.pick(&SHOW_WORDS), r.pick(&SHOW_WORDS)),
            _ => format!("{} {}", r.pick(&SHOW_WORDS), 1 + r.below(99)),
        };
        let kind = r
            .pick(&[
                "Scripted",
                "Scripted",
                "Reality",
                "Animation",
                "Documentary",
                "Talk Show",
                "Game Show",
                "News",
            ])
            .to_string();
        let language = r.chance(0.9).then(|| {
            r.pick(&[
                "English",
                "English",
                "English",
                "Japanese",
                "Spanish",
                "German",
                "Norwegian",
                "Korean",
            ])
            .to_string()
        });
        let mut genres = Vec::new();
        for _ in 0..r.below(4) {
            let genre = r.pick(&GENRES).to_string();
            if !genres.contains(&genre) {
                genres.push(genre);
            }
        }
        let status = r
            .pick(&[
                "Running",
                "Ended",
                "Ended",
                "To Be Determined",
                "In Development",
            ])
            .to_string();
        let premiered_year = 1950 + r.below(74);
        let premiered = r
            .chance(0.95)
            .then(|| r.date(premiered_year, premiered_year));
        let ended = (status == "Ended" && premiered.is_some())
            .then(|| r.date(premiered_year + 1, premiered_year + 8));
        let runtime = r.chance(0.9).then(|| *r.pick(&[22, 30, 45, 60]));
        let rating = r.chance(0.7).then(|| (30 + r.below(60)) as f64 / 10.0);
        let weight = r.below(100) as u32;
        let network = r.chance(0.8).then(|| Network {
            id: 1 + r.below(60),
            name: r.pick(&NETWORKS).to_string(),
            country: *r.pick(&COUNTRIES),
        });
        let summary = r
            .chance(0.9)
            .then(|| format!("<p><b>{name}</b> is a {kind} show made up by fake-tvmaze.</p>"));
        let updated = GENERATED_BEFORE - r.below(3 * 365 * 86_400) as i64;
        let cast = self.random_cast();
        Show {
            id,
            name,
            kind,
            language,
            genres,
            status,
            runtime,
            premiered,
            ended,
            rating,
            weight,
            network,
            summary,
            updated,
            cast,
        }
    }

    /// 0–8 credits: 8% of casts are empty; 30% of credits name a person
    /// already in some cast; 10% of new persons share a birthday with an
    /// earlier member of the cast; 5% of casts list one person twice.
    fn random_cast(&mut self) -> Vec<Credit> {
        if self.rng.chance(0.08) {
            return Vec::new();
        }
        let size = 1 + self.rng.below(8);
        let mut cast: Vec<Credit> = Vec::new();
        for _ in 0..size {
            let person = if !self.persons.is_empty() && self.rng.chance(0.3) {
                self.rng.pick(&self.persons).clone()
            } else {
                let mut person = self.new_person();
                if self.rng.chance(0.1) {
                    let birthdays: Vec<_> = cast
                        .iter()
                        .filter_map(|c| c.person.birthday.clone())
                        .collect();
                    if !birthdays.is_empty() {
                        person.birthday = Some(self.rng.pick(&birthdays).clone());
                    }
                }
                self.remember(person)
            };
            let credit = self.credit(person);
            cast.push(credit);
        }
        if cast.len() >= 2 && self.rng.chance(0.05) {
            let person = self.rng.pick(&cast).person.clone();
            let at = self.rng.below(cast.len() as u64 + 1) as usize;
            let credit = self.credit(person);
            cast.insert(at, credit);
        }
        cast
    }

    /// The first show's cast, so every catalogue has the awkward cases: one
    /// person with two characters, two persons born the same day, two
    /// without a birthday, and names outside ASCII.
    fn showcase_cast(&mut self) -> Vec<Credit> {
        let mut fixed = |name: &str, birthday: Option<&str>| {
            let mut person = self.new_person();
            person.name = name.to_string();
            person.birthday = birthday.map(str::to_string);
            person.deathday = None;
            self.remember(person)
        };
        let twice = fixed("Zoë Łukasiewicz-Ångström", Some("1970-05-01"));
        let same_day_a = fixed("José Núñez", Some("1985-03-14"));
        let no_birthday_a = fixed("Анна Петрова", None);
        let same_day_b = fixed("渡辺 謙", Some("1985-03-14"));
        let no_birthday_b = fixed("Björn Søndergaard", None);
        [
            twice.clone(),
            same_day_a,
            no_birthday_a,
            twice,
            same_day_b,
            no_birthday_b,
        ]
        .into_iter()
        .map(|p| self.credit(p))
        .collect()
    }

    fn new_person(&mut self) -> Person {
        let id = self.next_person_id;
        self.next_person_id += 1;
        let r = &mut self.rng;
        let name = if r.chance(0.06) {
            r.pick(&OTHER_SCRIPT_NAMES).to_string()
        } else {
            format!("{} {}", r.pick(&FIRST_NAMES), r.pick(&LAST_NAMES))
        };
        let birth_year = 1930 + r.below(76);
        let birthday = r.chance(0.85).then(|| r.date(birth_year, birth_year));
        let deathday = (birthday.is_some() && birth_year < 1950 && r.chance(0.3))
            .then(|| r.date(birth_year + 40, birth_year + 73));
        let gender = match r.below(10) {
            0 => None,
            1..=5 => Some("Male".to_string()),
            _ => Some("Female".to_string()),
        };
        Person {
            id,
            name,
            country: r.chance(0.85).then(|| *r.pick(&COUNTRIES)),
            birthday,
            deathday,
            gender,
            has_image: r.chance(0.8),
            updated: GENERATED_BEFORE - r.below(3 * 365 * 86_400) as i64,
        }
    }

    fn remember(&mut self, person: Person) -> Arc<Person> {
        let person = Arc::new(person);
        self.persons.push(person.clone());
        person
    }

    fn credit(&mut self, person: Arc<Person>) -> Credit {
        let id = self.next_character_id;
        self.next_character_id += 1;
        let is_self = self.rng.chance(0.03);
        let name = if is_self {
            match person.gender.as_deref() {
                Some("Male") => "Himself".to_string(),
                Some("Female") => "Herself".to_string(),
                _ => "Themselves".to_string(),
            }
        } else {
            format!(
                "{} {}",
                self.rng.pick(&FIRST_NAMES),
                self.rng.pick(&LAST_NAMES)
            )
        };
        Credit {
            person,
            character: Character { id, name },
            is_self,
            voice: self.rng.chance(0.05),
        }
    }
}

/// TvMaze's URL slug: lowercase words joined by `-`.
fn slug(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn image(kind: &str, id: u64) -> Value {
    let dir = id / 1000;
    json!({
        "medium": format!("https://static.tvmaze.com/uploads/images/medium_{kind}/{dir}/{id}.jpg"),
        "original": format!("https://static.tvmaze.com/uploads/images/original_untouched/{dir}/{id}.jpg"),
    })
}

fn country(c: &Country) -> Value {
    json!({"name": c.name, "code": c.code, "timezone": c.timezone})
}

fn link(href: String) -> Value {
    json!({"self": {"href": href}})
}

/// A show as `/shows/{id}` and `/shows?page=N` serve it; `api` is the base
/// URL used in `_links`.
pub fn show_json(show: &Show, api: &str) -> Value {
    let network = show.network.as_ref().map(|n| {
        json!({
            "id": n.id,
            "name": n.name,
            "country": country(&n.country),
            "officialSite": null,
        })
    });
    json!({
        "id": show.id,
        "url": format!("https://www.tvmaze.com/shows/{}/{}", show.id, slug(&show.name)),
        "name": show.name,
        "type": show.kind,
        "language": show.language,
        "genres": show.genres,
        "status": show.status,
        "runtime": show.runtime,
        "averageRuntime": show.runtime,
        "premiered": show.premiered,
        "ended": show.ended,
        "officialSite": null,
        "schedule": {"time": "", "days": []},
        "rating": {"average": show.rating},
        "weight": show.weight,
        "network": network,
        "webChannel": null,
        "dvdCountry": null,
        "externals": {"tvrage": null, "thetvdb": null, "imdb": null},
        "image": image("portrait", show.id),
        "summary": show.summary,
        "updated": show.updated,
        "_links": link(format!("{api}/shows/{}", show.id)),
    })
}

/// A show with `_embedded.cast`, as `/shows/{id}?embed=cast` serves it.
pub fn show_with_cast_json(show: &Show, api: &str) -> Value {
    let mut value = show_json(show, api);
    if let Value::Object(map) = &mut value {
        map.insert("_embedded".into(), json!({"cast": cast_json(show, api)}));
    }
    value
}

/// A show's cast, as `/shows/{id}/cast` serves it.
pub fn cast_json(show: &Show, api: &str) -> Value {
    Value::Array(show.cast.iter().map(|c| credit_json(c, api)).collect())
}

fn credit_json(credit: &Credit, api: &str) -> Value {
    let p = &credit.person;
    let c = &credit.character;
    json!({
        "person": {
            "id": p.id,
            "url": format!("https://www.tvmaze.com/people/{}/{}", p.id, slug(&p.name)),
            "name": p.name,
            "country": p.country.as_ref().map(country),
            "birthday": p.birthday,
            "deathday": p.deathday,
            "gender": p.gender,
            "image": if p.has_image { image("portrait", p.id) } else { Value::Null },
            "updated": p.updated,
            "_links": link(format!("{api}/people/{}", p.id)),
        },
        "character": {
            "id": c.id,
            "url": format!("https://www.tvmaze.com/characters/{}/{}", c.id, slug(&c.name)),
            "name": c.name,
            "image": null,
            "_links": link(format!("{api}/characters/{}", c.id)),
        },
        "self": credit.is_self,
        "voice": credit.voice,
    })
}

/// `/updates/shows`: `{"<id>": updated, ...}` in ascending id order, as
/// TvMaze sends it (a `serde_json::Map` would sort the keys as strings).
pub(crate) fn updates_json(updates: &[(u64, i64)]) -> String {
    let body: Vec<String> = updates
        .iter()
        .map(|(id, at)| format!("\"{id}\":{at}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_catalogue() {
        let a = Catalog::generate(300, 7, 3, 250, &[1]);
        let b = Catalog::generate(300, 7, 3, 250, &[1]);
        let c = Catalog::generate(300, 8, 3, 250, &[1]);
        let ids = |c: &Catalog| c.shows().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(a.shows().zip(b.shows()).all(|(x, y)| x == y));
        assert_ne!(ids(&a), ids(&c));
    }

    #[test]
    fn ids_have_gaps_and_skip_empty_pages() {
        let c = Catalog::generate(600, 1, 3, 250, &[1]);
        let ids: Vec<u64> = c.shows().map(|s| s.id).collect();
        assert_eq!(ids.len(), 600);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.windows(2).any(|w| w[1] - w[0] > 1), "no gaps");
        assert!(ids.iter().all(|id| !(250..500).contains(id)));
        assert_eq!(c.page(1).map(|p| p.len()), Some(0));
        let last = ids[ids.len() - 1] / 250;
        assert!(c.page(last).is_some_and(|p| !p.is_empty()));
        assert!(c.page(last + 1).is_none());
    }

    #[test]
    fn casts_cover_the_awkward_cases() {
        let c = Catalog::generate(600, 1, 3, 250, &[]);
        let shows: Vec<&Show> = c.shows().collect();
        let first = &shows[0].cast;
        let ids: Vec<u64> = first.iter().map(|c| c.person.id).collect();
        let distinct: BTreeSet<u64> = ids.iter().copied().collect();
        assert!(distinct.len() < ids.len(), "a person listed twice");
        assert!(first.iter().filter(|c| c.person.birthday.is_none()).count() >= 2);
        assert!(first.iter().any(|c| !c.person.name.is_ascii()));
        assert!(shows[1].cast.is_empty());
        // And in generated casts beyond the first show.
        let rest = &shows[2..];
        assert!(rest.iter().any(|s| s.cast.is_empty()));
        assert!(rest.iter().any(|s| {
            let people: BTreeSet<u64> = s.cast.iter().map(|c| c.person.id).collect();
            people.len() < s.cast.len()
        }));
        assert!(rest
            .iter()
            .flat_map(|s| &s.cast)
            .any(|c| c.person.birthday.is_none()));
    }

    #[test]
    fn mutations_bump_the_clock() {
        let mut c = Catalog::generate(10, 1, 0, 250, &[]);
        let before = c.show(1).map(|s| s.updated);
        assert!(c.update_show(1, |s| s.name = "Renamed".into()));
        let after = c.show(1).map(|s| s.updated);
        assert!(after > before);
        assert!(!c.update_show(999, |_| {}));
        let id = c.add_show(|s| s.name = "New".into());
        assert_eq!(id, 11);
        assert!(c.delete_show(2));
        assert!(!c.delete_show(2));
        assert!(c.show(2).is_none());
        let recent: Vec<u64> = c
            .updates(Some(GENERATED_BEFORE + 1))
            .iter()
            .map(|u| u.0)
            .collect();
        assert_eq!(recent, [1, 2, 11]);
        let stamps: BTreeSet<i64> = c
            .updates(Some(GENERATED_BEFORE + 1))
            .iter()
            .map(|u| u.1)
            .collect();
        assert_eq!(stamps.len(), 3, "every mutation has its own timestamp");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Under the Dome"), "under-the-dome");
        assert_eq!(slug("Dale \"Barbie\" Barbara"), "dale-barbie-barbara");
        assert_eq!(slug("Café 7"), "café-7");
    }
}
