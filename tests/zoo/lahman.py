"""Lahman-like: baseball seasons, teams, players and pay (Sean Lahman's baseball database), seeded.

- ``team_season(year, team_id)``: a composite primary key made of two foreign keys (season, teams).
- ``salaries(year, team_id, player_id)``: a primary key of a composite foreign key ``(year, team_id) ->
  team_season`` plus a single one ``player_id -> people``; a player is paid by a team at most once a season, and
  only by a team of a season he played in.
- ``awards_share(award_id, year, player_id)``: a primary key spanning three parents (awards, season, people).
"""

from __future__ import annotations

import decimal

import sqlalchemy as sa

from zoo._base import FIRST_NAMES, LAST_NAMES, Rows, ZooDatabase, money, rng_for

_TEAMS = ["ATL", "BAL", "BOS", "CHA", "CHN", "CIN", "CLE", "DET", "HOU", "KCA", "LAN", "MIL", "MIN", "NYA",
          "NYN", "OAK", "PHI", "PIT", "SDN", "SEA", "SFN", "SLN", "TEX", "TOR"]  # fmt: skip
_AWARDS = ["MVP", "Cy Young", "Rookie of the Year", "Gold Glove", "Silver Slugger"]
_YEARS = range(2000, 2020)


def metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "season",
        md,
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("games_scheduled", sa.SmallInteger, nullable=False),
    )
    sa.Table(
        "teams",
        md,
        sa.Column("team_id", sa.String(3), primary_key=True),
        sa.Column("league", sa.String(2), nullable=False),
        sa.Column("franchise_name", sa.String(50), nullable=False),
    )
    sa.Table(
        "people",
        md,
        sa.Column("player_id", sa.String(9), primary_key=True),
        sa.Column("name_first", sa.String(30), nullable=False),
        sa.Column("name_last", sa.String(30), nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("bats", sa.String(1)),
        sa.Column("throws", sa.String(1), nullable=False),
    )
    sa.Table(
        "team_season",
        md,
        sa.Column("year", sa.Integer, sa.ForeignKey("season.year"), primary_key=True, autoincrement=False),
        sa.Column("team_id", sa.String(3), sa.ForeignKey("teams.team_id"), primary_key=True),
        sa.Column("wins", sa.SmallInteger, nullable=False),
        sa.Column("losses", sa.SmallInteger, nullable=False),
        sa.Column("attendance", sa.Integer, nullable=False),
    )
    sa.Table(
        "salaries",
        md,
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("team_id", sa.String(3), primary_key=True),
        sa.Column("player_id", sa.String(9), sa.ForeignKey("people.player_id"), primary_key=True),
        sa.Column("salary", sa.Numeric(12, 2), nullable=False),
        sa.ForeignKeyConstraint(
            ["year", "team_id"], ["team_season.year", "team_season.team_id"], name="fk_salaries_team_season"
        ),
    )
    sa.Table(
        "awards",
        md,
        sa.Column("award_id", sa.String(30), primary_key=True),
        sa.Column("max_points", sa.SmallInteger, nullable=False),
    )
    sa.Table(
        "awards_share",
        md,
        sa.Column("award_id", sa.String(30), sa.ForeignKey("awards.award_id"), primary_key=True),
        sa.Column("year", sa.Integer, sa.ForeignKey("season.year"), primary_key=True, autoincrement=False),
        sa.Column("player_id", sa.String(9), sa.ForeignKey("people.player_id"), primary_key=True),
        sa.Column("points_won", sa.Numeric(6, 1), nullable=False),
        sa.Column("votes_first", sa.SmallInteger),
    )
    return md


def data(seed: int = 0) -> Rows:
    rng = rng_for(seed, "lahman")
    rows: Rows = {}
    rows["season"] = [{"year": y, "games_scheduled": 162} for y in _YEARS]
    rows["teams"] = [
        {"team_id": t, "league": "AL" if i % 2 else "NL", "franchise_name": f"{t} franchise"}
        for i, t in enumerate(_TEAMS)
    ]
    rows["team_season"] = []
    for y in _YEARS:
        for t in _TEAMS:
            wins = int(rng.normal(81, 10))
            rows["team_season"].append(
                {"year": y, "team_id": t, "wins": wins, "losses": 162 - wins,
                 "attendance": int(rng.normal(2_300_000, 500_000) + 15_000 * (wins - 81))}
            )  # fmt: skip
    rows["people"], rows["salaries"] = [], []
    seen: set[str] = set()
    careers: dict[str, list[int]] = {}
    for _ in range(700):
        first, last = str(rng.choice(FIRST_NAMES)), str(rng.choice(LAST_NAMES))
        stem = "".join(ch for ch in (last[:5] + first[:2]).lower() if ch.isascii() and ch.isalpha())
        n = 1
        while f"{stem}{n:02d}" in seen:
            n += 1
        pid = f"{stem}{n:02d}"
        seen.add(pid)
        debut = int(rng.integers(_YEARS.start - 5, _YEARS.stop - 1))
        length = int(max(1, rng.gamma(2.0, 2.5)))
        years = [y for y in range(debut, debut + length) if y in _YEARS]
        careers[pid] = years
        rows["people"].append(
            {
                "player_id": pid,
                "name_first": first,
                "name_last": last,
                "birth_year": debut - int(rng.integers(20, 26)),
                "bats": None if rng.random() < 0.05 else str(rng.choice(["R", "L", "B"], p=[0.6, 0.3, 0.1])),
                "throws": str(rng.choice(["R", "L"], p=[0.75, 0.25])),
            }
        )
        team = str(rng.choice(_TEAMS))
        pay = float(rng.lognormal(13.5, 0.6))
        for year in years:
            if rng.random() < 0.15:  # traded: a new team from this season on
                team = str(rng.choice(_TEAMS))
            pay *= float(rng.lognormal(0.08, 0.15))
            rows["salaries"].append({"year": year, "team_id": team, "player_id": pid, "salary": money(pay)})
            if rng.random() < 0.05:  # traded mid-season: paid by two teams that year
                other = str(rng.choice([t for t in _TEAMS if t != team]))
                rows["salaries"].append(
                    {"year": year, "team_id": other, "player_id": pid, "salary": money(pay * 0.4)}
                )
    rows["awards"] = [{"award_id": a, "max_points": 448 if i < 3 else 0} for i, a in enumerate(_AWARDS)]
    rows["awards_share"] = []
    active = {y: sorted(p for p, ys in careers.items() if y in ys) for y in _YEARS}
    for award in _AWARDS:
        for year in _YEARS:
            k = min(len(active[year]), int(rng.integers(6, 16)))
            for rank, pid in enumerate(rng.choice(active[year], size=k, replace=False)):
                rows["awards_share"].append(
                    {
                        "award_id": award,
                        "year": year,
                        "player_id": str(pid),
                        "points_won": decimal.Decimal(
                            f"{max(1.0, 400 / (rank + 1) + rng.normal(0, 10)):.1f}"
                        ),
                        "votes_first": max(0, 30 - 8 * rank + int(rng.integers(-3, 4))) if rank < 4 else None,
                    }
                )
    return rows


LAHMAN = ZooDatabase(
    name="lahman",
    metadata=metadata,
    data=data,
    shapes={
        "PK = composite FK + single FK": "salaries(year, team_id, player_id): (year, team_id) -> team_season",
        "PK spanning three parents": "awards_share(award_id -> awards, year -> season, player_id -> people)",
    },
)
