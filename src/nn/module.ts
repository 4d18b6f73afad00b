import { activeBuilder, ModuleCall } from '../dsl/builder';
import { Tensor } from '../dsl/builder';
import { Buffer, Parameter } from './parameter';

/**
 * Base of all layers and models, as PyTorch's nn.Module. Children and parameters are the module's own
 * properties, discovered in declaration order, so `this.conv1 = new Conv2d(...)` is all it takes; arrays of
 * modules are named by index. Calling `forward` (from a parent's forward) runs it in the module's name scope
 * and records the call for the model summary.
 */
export abstract class Module {
  /** Path in the model (`features.0`), set when the model is built; '' for the root. */
  path = '';
  /** Number of ancestors in the model's module tree. */
  depth = 0;

  constructor() {
    // `this.forward` is the subclass's method here (the prototype chain is in place before constructors run):
    // wrap it once per instance so that every call gets scoping and summary bookkeeping.
    const impl = this.forward as (...args: unknown[]) => unknown;
    Object.defineProperty(this, 'forward', {
      value: (...args: unknown[]) => callModule(this, impl, args),
      enumerable: false,
      writable: true,
    });
  }

  abstract forward(...inputs: Tensor[]): unknown;

  /** Direct children, with the names they have in this module. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) out.push([key, value]);
      else if (Array.isArray(value)) value.forEach((v, i) => v instanceof Module && out.push([`${key}.${i}`, v]));
    }
    return out;
  }

  /** Parameters and buffers this module declares itself. */
  ownTensors(): [string, Parameter][] {
    return Object.entries(this).filter((e): e is [string, Parameter] => e[1] instanceof Parameter);
  }

  /** Every module of the tree, depth first, with its path relative to this one. */
  namedModules(): [string, Module][] {
    return this.walk('', 0, new Set()).map(([path, m]) => [path, m]);
  }

  private walk(prefix: string, depth: number, seen: Set<Module>): [string, Module, number][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module, number][] = [[prefix, this, depth]];
    for (const [name, child] of this.namedChildren()) out.push(...child.walk(prefix ? `${prefix}.${name}` : name, depth + 1, seen));
    return out;
  }

  /** Trainable parameters and buffers of the whole tree by full name (`features.0.weight`), in declaration order. */
  namedTensors(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    for (const [path, m] of this.namedModules()) {
      for (const [key, p] of m.ownTensors()) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([path ? `${path}.${key}` : key, p]);
      }
    }
    return out;
  }

  namedParameters(): [string, Parameter][] {
    return this.namedTensors().filter(([, p]) => !(p instanceof Buffer));
  }

  namedBuffers(): [string, Parameter][] {
    return this.namedTensors().filter(([, p]) => p instanceof Buffer);
  }

  /** Number of parameter elements (buffers excluded), as torchinfo's "Total params". */
  parameterCount(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.size, 0);
  }

  /** Gives every module its path and every parameter its full name. */
  assignNames(): void {
    for (const [path, m, depth] of this.walk('', 0, new Set())) {
      m.path = path;
      m.depth = depth;
    }
    for (const [name, p] of this.namedTensors()) p.name = name;
  }
}

function callModule(module: Module, impl: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  const builder = activeBuilder();
  const row: ModuleCall = {
    path: module.path,
    type: module.constructor.name,
    depth: module.depth,
    outputShapes: [],
    ownParameters: module.ownTensors().filter(([, p]) => !(p instanceof Buffer)).reduce((n, [, p]) => n + p.size, 0),
    hasChildren: module.namedChildren().length > 0,
  };
  builder.moduleCalls.push(row);
  const out = builder.withScope(module.path, () => impl.apply(module, args));
  row.outputShapes = tensorsIn(out).map((t) => t.shape);
  return out;
}

function tensorsIn(value: unknown): Tensor[] {
  if (value instanceof Tensor) return [value];
  if (Array.isArray(value)) return value.flatMap(tensorsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(tensorsIn);
  return [];
}
