# %% [markdown]
# # 网格概况 — grid overview
#
# What a centre analyst looks at first: residents and care groups per community, how the events of
# each class are being handled, and which care-group persons are due a visit. Reads only the shared
# warehouse (`warehouse/redwall.duckdb`), read-only, so it never blocks a publish.
#
# Open it in Jupyter (jupytext percent format) or run it as a script:
# `REDWALL_HOME=… python notebooks/grid_overview.py`. The tests run it on the demo home.

# %%
import duckdb

from redwall.home import Home

home = Home.from_env()
con = duckdb.connect(str(home.warehouse), read_only=True)

# %% [markdown]
# ## Residents and care groups per community (active residents only)

# %%
residents = con.sql("""
    SELECT community_name,
           count(*)                       AS grids,
           sum(residents)                 AS residents,
           sum(registered_residents)      AS registered,
           sum(floating_residents)        AS floating,
           sum(living_alone)              AS living_alone,
           sum(very_old)                  AS very_old,
           sum(disabled)                  AS disabled,
           sum(dibao)                     AS dibao
    FROM mart.grid
    GROUP BY community_name
    ORDER BY residents DESC
""").pl()
print(residents)

# %% [markdown]
# ## Events by class: closed on time, still open, overdue

# %%
events = con.sql("""
    SELECT major_name, class_name,
           count(*)                                        AS events,
           count(*) FILTER (WHERE NOT is_open)             AS closed,
           round(avg(on_time::INT) * 100, 1)               AS on_time_pct,
           count(*) FILTER (WHERE is_open)                 AS open,
           count(*) FILTER (WHERE overdue)                 AS overdue
    FROM mart.event
    GROUP BY ALL
    ORDER BY events DESC
""").pl()
print(events)

# %% [markdown]
# ## Care-group visits that are overdue, per community

# %%
visits = con.sql("""
    SELECT community_name,
           count(*)                                   AS care_persons,
           count(*) FILTER (WHERE visit_overdue)      AS overdue
    FROM mart.care_visit
    GROUP BY community_name
    ORDER BY overdue DESC
""").pl()
print(visits)

# %%
con.close()
