import "/static/tiergraph.js";
