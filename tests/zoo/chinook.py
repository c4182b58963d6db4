"""Chinook-like: a digital music store (Luis Rocha's Chinook sample database), seeded.

- ``playlist_track(playlist_id, track_id)``: the many-to-many link table, its primary key the two foreign keys
  and nothing else; a playlist holds each track at most once, and popular tracks sit on many playlists.
- ``customer.email``: a unique non-key column.
- ``artist``: a parent whose rows are 90% childless (most artists have no album in the store).
- ``track``: a child of three parents (album, genre, media_type); ``invoice_line`` of two (invoice, track).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from zoo._base import COUNTRIES, FIRST_NAMES, LAST_NAMES, Rows, ZooDatabase, money, rng_for

_GENRES = [
    "Rock",
    "Jazz",
    "Metal",
    "Alternative",
    "Blues",
    "Latin",
    "Reggae",
    "Pop",
    "Classical",
    "Soundtrack",
]
_MEDIA = ["MPEG audio file", "Protected AAC audio file", "Purchased AAC audio file", "AAC audio file"]
_WORDS = ["Night", "Road", "Fire", "Blue", "Heart", "River", "Ghost", "Gold", "Rain", "Storm", "Moon", "Echo"]


def metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "artist",
        md,
        sa.Column("artist_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(120), nullable=False),
    )
    sa.Table(
        "album",
        md,
        sa.Column("album_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.String(160), nullable=False),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artist.artist_id"), nullable=False),
    )
    sa.Table(
        "genre",
        md,
        sa.Column("genre_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(120), nullable=False),
    )
    sa.Table(
        "media_type",
        md,
        sa.Column("media_type_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(120), nullable=False),
    )
    sa.Table(
        "track",
        md,
        sa.Column("track_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("album_id", sa.Integer, sa.ForeignKey("album.album_id"), nullable=False),
        sa.Column("media_type_id", sa.Integer, sa.ForeignKey("media_type.media_type_id"), nullable=False),
        sa.Column("genre_id", sa.Integer, sa.ForeignKey("genre.genre_id"), nullable=False),
        sa.Column("milliseconds", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
    )
    sa.Table(
        "playlist",
        md,
        sa.Column("playlist_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(120), nullable=False),
    )
    sa.Table(
        "playlist_track",
        md,
        sa.Column("playlist_id", sa.Integer, sa.ForeignKey("playlist.playlist_id"), primary_key=True),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("track.track_id"), primary_key=True),
    )
    sa.Table(
        "customer",
        md,
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_name", sa.String(40), nullable=False),
        sa.Column("last_name", sa.String(40), nullable=False),
        sa.Column("country", sa.String(40), nullable=False),
        sa.Column("email", sa.String(60), nullable=False),
        sa.UniqueConstraint("email", name="uq_customer_email"),
    )
    sa.Table(
        "invoice",
        md,
        sa.Column("invoice_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.customer_id"), nullable=False),
        sa.Column("invoice_date", sa.Date, nullable=False),
        sa.Column("billing_country", sa.String(40), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
    sa.Table(
        "invoice_line",
        md,
        sa.Column("invoice_line_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoice.invoice_id"), nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("track.track_id"), nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    return md


def data(seed: int = 0) -> Rows:
    rng = rng_for(seed, "chinook")
    rows: Rows = {}
    n_artists = 1000
    rows["artist"] = [
        {"artist_id": i, "name": f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}s {i}"}
        for i in range(1, n_artists + 1)
    ]
    # 10% of the artists have albums, 1-7 each: the other 90% are childless
    with_albums = sorted(int(a) for a in rng.choice(n_artists, size=n_artists // 10, replace=False) + 1)
    rows["album"] = []
    for artist in with_albums:
        for _ in range(int(rng.integers(1, 8))):
            aid = len(rows["album"]) + 1
            rows["album"].append(
                {
                    "album_id": aid,
                    "title": f"{rng.choice(_WORDS)} of {rng.choice(_WORDS)}",
                    "artist_id": artist,
                }
            )
    rows["genre"] = [{"genre_id": i, "name": g} for i, g in enumerate(_GENRES, 1)]
    rows["media_type"] = [{"media_type_id": i, "name": m} for i, m in enumerate(_MEDIA, 1)]
    rows["track"] = []
    for album in rows["album"]:
        genre = int(rng.integers(1, len(_GENRES) + 1))  # an album is mostly of one genre
        media = int(rng.choice(len(_MEDIA), p=[0.75, 0.1, 0.05, 0.1])) + 1
        for _ in range(int(rng.integers(4, 15))):
            tid = len(rows["track"]) + 1
            rows["track"].append(
                {
                    "track_id": tid,
                    "name": f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                    "album_id": album["album_id"],
                    "media_type_id": media,
                    "genre_id": genre if rng.random() < 0.9 else int(rng.integers(1, len(_GENRES) + 1)),
                    "milliseconds": int(rng.gamma(6.0, 45_000)),
                    "unit_price": money(0.99 if media != 2 else 1.99),
                }
            )
    n_tracks = len(rows["track"])
    popularity = rng.zipf(1.6, n_tracks).astype(float)
    popularity /= popularity.sum()
    rows["playlist"] = [{"playlist_id": i, "name": f"{rng.choice(_WORDS)} mix {i}"} for i in range(1, 61)]
    rows["playlist_track"] = []
    for p in rows["playlist"]:
        size = int(min(n_tracks, max(3, rng.lognormal(3.3, 0.8))))
        picked = rng.choice(n_tracks, size=size, replace=False, p=popularity) + 1
        rows["playlist_track"] += [
            {"playlist_id": p["playlist_id"], "track_id": int(t)} for t in sorted(picked)
        ]
    rows["customer"] = []
    for cid in range(1, 401):
        first, last = str(rng.choice(FIRST_NAMES)), str(rng.choice(LAST_NAMES))
        rows["customer"].append(
            {
                "customer_id": cid,
                "first_name": first,
                "last_name": last,
                "country": str(rng.choice(COUNTRIES)),
                "email": f"{first}.{last}{cid}@chinook.example".lower().replace("'", ""),
            }
        )
    rows["invoice"], rows["invoice_line"] = [], []
    start = dt.date(2021, 1, 1)
    for c in rows["customer"]:
        for _ in range(int(rng.poisson(3.0))):
            iid = len(rows["invoice"]) + 1
            lines = int(rng.choice([1, 2, 3, 4, 6, 9], p=[0.3, 0.25, 0.15, 0.1, 0.1, 0.1]))
            total = 0.0
            for t in rng.choice(n_tracks, size=lines, replace=False, p=popularity) + 1:
                price = float(rows["track"][int(t) - 1]["unit_price"])
                rows["invoice_line"].append(
                    {
                        "invoice_line_id": len(rows["invoice_line"]) + 1,
                        "invoice_id": iid,
                        "track_id": int(t),
                        "unit_price": money(price),
                        "quantity": 1,
                    }
                )
                total += price
            rows["invoice"].append(
                {
                    "invoice_id": iid,
                    "customer_id": c["customer_id"],
                    "invoice_date": start + dt.timedelta(days=int(rng.integers(0, 1460))),
                    "billing_country": c["country"],
                    "total": money(total),
                }
            )
    return rows


CHINOOK = ZooDatabase(
    name="chinook",
    metadata=metadata,
    data=data,
    shapes={
        "many-to-many link table (PK = two FKs)": "playlist_track(playlist_id, track_id)",
        "unique non-key column": "customer(email)",
        "parent with 90% childless rows": "artist -> album(artist_id)",
    },
    childless={("artist", "album", "artist_id"): 0.9},
)
