"""The pages Tiergraph serves beside its API: overview, movement, loss, customer, rule editor and GraphiQL.

Every page is static HTML plus a script that reads the GraphQL API (nothing here touches the database), and every
script, style and font comes from this package or from an installed Python package (web/vendor.py), so the pages
work on a network without internet.
"""
