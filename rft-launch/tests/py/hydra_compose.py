"""Composes a published recipe through Hydra as the HyperPod recipes launcher does.

    hydra_compose.py compose ROOT RECIPE CLUSTER < overrides.json
        ROOT: the recipes repository (holding recipes_collection/); RECIPE: the recipe's path
        without .yaml; CLUSTER: k8s or sm_jobs; stdin: a JSON object of dotted keys and values,
        the launcher's --override-parameters. Each becomes `key=value` (Hydra's override
        grammar), then `compose(config_name="config", overrides=[recipes=RECIPE, cluster=...,
        cluster_type=..., *those])`. Hydra refuses a key the config does not have ("Could not
        override ..."): then the error goes to stderr and the exit code is 1. Otherwise stdout is a
        JSON object of each key and its composed value.
    hydra_compose.py load FILE
        stdout: the YAML file as OmegaConf loads it (interpolations kept), as JSON.

Used by rft-launch/tests/recipes.rs; needs hydra-core 1.3.2 (rft-launch/tests/requirements.txt).
"""
import json
import os
import sys

from omegaconf import OmegaConf


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        # Quoted: Hydra's grammar reads an unquoted `a,b` as a sweep and `${...}` as an
        # interpolation; a quoted string is the string.
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(v)


def compose(root, recipe, cluster, overrides):
    from hydra import compose as hydra_compose, initialize_config_dir

    os.chdir(root)  # the config's searchpath is relative to the repository
    args = [f"recipes={recipe}", f"cluster={cluster}", f"cluster_type={cluster}"]
    args += [f"{k}={value(v)}" for k, v in overrides.items()]
    with initialize_config_dir(config_dir=os.path.join(root, "recipes_collection"), version_base="1.2"):
        cfg = hydra_compose(config_name="config", overrides=args)
    return {k: OmegaConf.to_container(OmegaConf.create({"v": OmegaConf.select(cfg, k)}), resolve=True)["v"] for k in overrides}


def main():
    if sys.argv[1] == "compose":
        try:
            out = compose(sys.argv[2], sys.argv[3], sys.argv[4], json.load(sys.stdin))
        except Exception as e:  # Hydra's own message, for the test's failure
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
        print(json.dumps(out))
    elif sys.argv[1] == "load":
        print(json.dumps(OmegaConf.to_container(OmegaConf.load(sys.argv[2]), resolve=False)))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")


main()
