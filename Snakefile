from snakemake.utils import min_version

from symzoo.config import ConfigError
from symzoo.config import validate as validated

min_version("8.0")


# The embedded default, unless --configfile names another (Snakemake would otherwise merge the two).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The schema (defaults filled in) and the cross-key rules, with a message that names the key: the same check
# as `symzoo check-config`.
try:
    config.update(validated(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None


report: "workflow/report/workflow.rst"


include: "workflow/rules/constants.smk"
include: "workflow/rules/params.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/zoo.smk"
include: "workflow/rules/encoder.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/generate.smk"


rule all:
    default_target: True
    input:
        [target for targets in STAGES.values() for target in targets],


rule data:
    input:
        STAGES["data"],


rule zoos:
    input:
        STAGES["zoos"],


rule encoders:
    input:
        STAGES["encoders"],


rule merge:
    input:
        STAGES["merge"],


rule predict:
    input:
        STAGES["predict"],


rule finetune:
    input:
        STAGES["finetune"],


rule generate:
    input:
        STAGES["generate"],


rule report:
    input:
        STAGES["report"],


rule budget:
    input:
        rules.budget_report.output,
