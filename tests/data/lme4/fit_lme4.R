# Known answers for tests/test_glmm.py: lme4's fit of each CSV in this folder (written by
# make_data.py) with the criterion bodyscene's glmm.py uses, nAGQ = 0 (Laplace, fixed effects
# inside the penalised IRLS), and vcov from the joint precision (use.hessian = FALSE).
#   Rscript tests/data/lme4/fit_lme4.R      (Debian: apt-get install r-base-core r-cran-lme4)
# Writes lme4_<name>.json beside each CSV.
suppressPackageStartupMessages(library(lme4))
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))))
for (csv in list.files(here, pattern = "\\.csv$", full.names = TRUE)) {
  d <- read.csv(csv, stringsAsFactors = FALSE)
  d$condition <- factor(d$condition, levels = unique(d$condition))  # original first
  d$group <- factor(d$group, levels = unique(d$group))                # humans first
  form <- if (nlevels(d$group) > 1) {
    correct ~ condition * group + (1 + condition | participant) + (1 | item)
  } else {
    correct ~ condition + (1 + condition | participant) + (1 | item)
  }
  m <- glmer(form, data = d, family = binomial, nAGQ = 0,
             control = glmerControl(optimizer = "bobyqa",
                                    optCtrl = list(maxfun = 1e5, rhoend = 1e-10)))
  vc <- VarCorr(m)
  part <- vc$participant
  out <- list(
    formula = paste(deparse(form), collapse = " "),
    lme4_version = as.character(packageVersion("lme4")),
    nAGQ = 0,
    terms = names(fixef(m)),
    estimate = unname(fixef(m)),
    se = unname(sqrt(diag(as.matrix(vcov(m, use.hessian = FALSE))))),
    sd_participant = unname(attr(part, "stddev")),
    corr_participant = unname(attr(part, "correlation")),
    sd_item = unname(attr(vc$item, "stddev")),
    loglik = as.numeric(logLik(m)),
    singular = isSingular(m)
  )
  name <- sub("\\.csv$", "", basename(csv))
  writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             file.path(here, paste0("lme4_", name, ".json")))
  cat(name, ": logLik", out$loglik, " singular", out$singular, "\n")
}
